# Workload image for ShardedFinetune (JAX on TPU; for GPUs install jax[cuda13] instead of jax[tpu]).
# Build from the repository root: docker build -f images/jax.Dockerfile -t glassbox/jax .
FROM python:3.11-slim
RUN useradd --uid 65532 --create-home glassbox
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
RUN pip install --no-cache-dir ".[jax]" "jax[tpu]==0.10.2" && rm -rf /src
USER 65532:65532
WORKDIR /home/glassbox
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
