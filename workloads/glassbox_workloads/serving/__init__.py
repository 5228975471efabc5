"""The model server every service kind runs (ScorerService, DialogBot): KServe's ModelServer with
its v1/v2 routes and /metrics, extra FastAPI routes, model work batched on a worker thread, bound
to loopback locally and to every address in a pod, gRPC off. Kind-neutral: a kind hands it a
kserve.Model, its routers and a function that loads the weights."""
