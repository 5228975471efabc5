# The operator image: the API, the operator and `glassbox ui` (the `ui` extra: Starlette, uvicorn; the
# chart's ui.enabled runs it from this image); no torch, no JAX, so it starts in a second.
# Build from the repository root: docker build -f images/operator.Dockerfile -t glassbox/operator .
# BASE: any Debian-like image with python3 >= 3.10 and its venv module (see torch.Dockerfile).
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
# pip's cache stays out of the layers (see torch.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
ENV PATH=/opt/glassbox/bin:$PATH
RUN python3 -m venv /opt/glassbox \
 && pip wheel ${PIP_CACHE} --no-deps --wheel-dir /wheels . \
 && pip wheel ${PIP_CACHE} --wheel-dir /wheels "kopf==1.45.2" "kubernetes==37.0.1" "python-dateutil==2.9.0.post0" "prometheus-client>=0.20" \
      "pydantic>=2.10,<3" "minio>=7.2,<8" "pyyaml>=6" "typer>=0.12" "rich>=13" \
      "starlette==1.10.0" "uvicorn==0.54.0" \
 && pip install --no-index --find-links /wheels "glassbox[operator,ui]"

# Only the venv goes into the final image (no wheels, no sources).
FROM ${BASE}
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin glassbox
COPY --from=build /opt/glassbox /opt/glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["glassbox"]
CMD ["operator"]
