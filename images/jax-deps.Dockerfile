# The dependencies of the JAX workload image (images/jax.Dockerfile is this plus glassbox itself).
# No torch: the recipes' text tools come from the recipes extra (scikit-learn, NLTK with Punkt, spaCy
# and its English pipeline, sacrebleu), not the metrics extra, whose bert-score would bring torch.
# JAX_EXTRA picks jax's accelerator build: tpu (default, TPU VMs), cuda13 (NVIDIA GPUs: no CUDA base
# image needed, the CUDA libraries come as nvidia-* wheels), cpu (hack/images.sh's test image).
# Build from the repository root: docker build -f images/jax-deps.Dockerfile -t glassbox/jax-deps .
# BASE and the order of the layers: see torch-deps.Dockerfile.
ARG BASE=python:3.11-slim
FROM ${BASE}
# pip's cache stays out of the layers (see torch-deps.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
ARG JAX_EXTRA=tpu
RUN printf 'path-include=/usr/share/man/man5/*\n' > /etc/dpkg/dpkg.cfg.d/zz-glassbox-man \
 && python3 -m venv /opt/glassbox \
 && useradd --uid 65532 --create-home --shell /usr/sbin/nologin glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml images/requirements.py /tmp/glassbox-deps/
RUN python3 /tmp/glassbox-deps/requirements.py jax recipes train:prometheus-client > /tmp/glassbox-deps/requirements.txt \
 && pip install ${PIP_CACHE} -r /tmp/glassbox-deps/requirements.txt "jax[${JAX_EXTRA}]==0.10.2" \
 && rm -rf /tmp/glassbox-deps
COPY hack/assets.sh /tmp/glassbox-assets/hack/assets.sh
RUN PIP_NO_CACHE_DIR=1 VENV=/opt/glassbox bash /tmp/glassbox-assets/hack/assets.sh \
 && rm -rf /var/lib/apt/lists/* /tmp/glassbox-assets
USER 65532:65532
WORKDIR /home/glassbox
