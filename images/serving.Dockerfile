# Model servers of ScorerService and DialogBot (KServe's ModelServer, the InferenceService predictor
# container `kserve-container`): the torch image plus the serve extra. FROM the torch image, so its
# 6 GB of layers are shared (stored and pulled once per node) and this build takes a minute;
# glassbox itself comes from the torch image.
# Build from the repository root, after the torch image:
#   docker build -f images/serving.Dockerfile --build-arg TORCH_IMAGE=glassbox/torch -t glassbox/serving .
ARG TORCH_IMAGE=ghcr.io/glassbox/torch:0.1.0
FROM ${TORCH_IMAGE}
# pip's cache stays out of the layers (see torch-deps.Dockerfile).
ARG PIP_CACHE=--no-cache-dir
USER 0:0
COPY pyproject.toml images/requirements.py /tmp/glassbox-deps/
RUN python3 /tmp/glassbox-deps/requirements.py --no-base serve > /tmp/glassbox-deps/requirements.txt \
 && pip install ${PIP_CACHE} -r /tmp/glassbox-deps/requirements.txt \
 && rm -rf /tmp/glassbox-deps
USER 65532:65532
WORKDIR /home/glassbox
ENTRYPOINT ["python", "-m", "glassbox_workloads"]
