# Workload image for ShardedFinetune (JAX): glassbox installed without dependencies over
# images/jax-deps.Dockerfile (jax for JAX_EXTRA's accelerator, flax, optax, the recipes' text tools
# and language data), so a source change rebuilds only this layer.
# Build from the repository root, after the deps image:
#   docker build -f images/jax-deps.Dockerfile -t glassbox/jax-deps .
#   docker build -f images/jax.Dockerfile --build-arg JAX_DEPS_IMAGE=glassbox/jax-deps -t glassbox/jax .
ARG JAX_DEPS_IMAGE=ghcr.io/glassbox/jax-deps:0.1.0
FROM ${JAX_DEPS_IMAGE}
# pip's cache stays out of the layers (see torch-deps.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
USER 0:0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
RUN pip install ${PIP_CACHE} --no-deps . && rm -rf /src
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
