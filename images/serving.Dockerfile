# Model servers of ScorerService and DialogBot (KServe's ModelServer, the InferenceService predictor
# container `kserve-container`): the torch image plus the serve extra's pins. FROM the torch image,
# so its 4 GB of layers are shared (pulled and stored once per node) and this build takes seconds;
# glassbox itself comes from the torch image.
# Build from the repository root, after the torch image:
#   docker build -f images/serving.Dockerfile --build-arg TORCH_IMAGE=glassbox/torch -t glassbox/serving .
ARG TORCH_IMAGE=ghcr.io/glassbox/torch:0.1.0
FROM ${TORCH_IMAGE}
# pip's cache stays out of the layers (see torch.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
USER 0:0
COPY pyproject.toml /tmp/glassbox-pyproject.toml
RUN python3 -c 'import tomllib; x = tomllib.load(open("/tmp/glassbox-pyproject.toml", "rb")); \
print("\n".join(x["project"]["optional-dependencies"]["serve"]))' > /tmp/serve.txt \
 && pip install ${PIP_CACHE} -r /tmp/serve.txt \
 && rm /tmp/serve.txt /tmp/glassbox-pyproject.toml
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
