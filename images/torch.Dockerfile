# Workload image for PretrainRun, KGHarvest, MetricEval and the training stages of ScorerService and
# DialogBot (torch): glassbox installed without dependencies over images/torch-deps.Dockerfile (torch,
# the other dependencies, the language data), so a source change rebuilds only this layer. One image
# for CPU and GPU nodes: see torch-deps.Dockerfile.
# Build from the repository root, after the deps image:
#   docker build -f images/torch-deps.Dockerfile -t glassbox/torch-deps .
#   docker build -f images/torch.Dockerfile --build-arg TORCH_DEPS_IMAGE=glassbox/torch-deps -t glassbox/torch .
ARG TORCH_DEPS_IMAGE=ghcr.io/glassbox/torch-deps:0.1.0
FROM ${TORCH_DEPS_IMAGE}
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
