# The operator image: the API, the operator and `glassbox ui` (the `ui` extra: Starlette, uvicorn; the
# chart's ui.enabled runs it from this image); no torch, no JAX, so it starts in a second.
# Build from the repository root: docker build -f images/operator.Dockerfile -t glassbox/operator .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY operator operator
COPY workloads workloads
COPY ui ui
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels "kopf==1.45.2" "kubernetes==37.0.1" "python-dateutil==2.9.0.post0" "prometheus-client>=0.20" \
      "pydantic>=2.10,<3" "minio>=7.2,<8" "pyyaml>=6" "typer>=0.12" "rich>=13" \
      "starlette==1.10.0" "uvicorn==0.54.0"

FROM python:3.11-slim
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin glassbox
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "glassbox[operator,ui]" && rm -rf /wheels
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["glassbox"]
CMD ["operator"]
