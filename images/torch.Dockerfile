# Workload image for PretrainRun, ScorerService, KGHarvest, MetricEval and DialogBot (torch on CUDA).
# Build from the repository root: docker build -f images/torch.Dockerfile -t glassbox/torch .
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/glassbox && useradd --uid 65532 --create-home glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
RUN pip install --no-cache-dir "torch==2.13.0" && pip install --no-cache-dir ".[train,ray,deepspeed,serve]" && rm -rf /src
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
