# The operator image: the API, the operator and `glassbox ui` (the `ui` extra: Starlette, uvicorn; the
# chart's ui.enabled runs it from this image); no torch, no JAX, so it starts in a second.
# Build from the repository root: docker build -f images/operator.Dockerfile -t glassbox/operator .
# BASE and the order of the layers: see torch-deps.Dockerfile.
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
# pip's cache stays out of the layers (see torch-deps.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
ENV PATH=/opt/glassbox/bin:$PATH
# The dependencies first (the operator and ui extras' pins), in a layer that a source change keeps.
RUN python3 -m venv /opt/glassbox \
 && pip install ${PIP_CACHE} "kopf==1.45.2" "kubernetes==37.0.1" "python-dateutil==2.9.0.post0" "prometheus-client>=0.20" \
      "pydantic>=2.10,<3" "minio>=7.2,<8" "pyyaml>=6" "typer>=0.12" "rich>=13" \
      "starlette==1.10.0" "uvicorn==0.54.0"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
# glassbox itself, then a check with no index that every requirement of its extras is installed.
RUN pip install ${PIP_CACHE} --no-deps . && pip install --no-index "glassbox[operator,ui]"

# Only the venv goes into the final image (no sources, no build leftovers).
FROM ${BASE}
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin glassbox
COPY --from=build /opt/glassbox /opt/glassbox
ENV PATH=/opt/glassbox/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["glassbox"]
CMD ["operator"]
