"""`glassbox operator`: Kopf settings, logins, metrics and the run loop."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Optional

import kopf
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from prometheus_client import start_http_server

from glassbox_api.constants import ANNOTATION_PREFIX, FINALIZER

from .config import load_config
from .handlers import peering_priority, register
from .kube import Kube
from .localrunner import LocalRunner
from .observed import configure as configure_watches
from .reconcile import Reconciler


def _load_kube() -> None:
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()


def api_client(workers: int) -> ApiClient:
    """A client of the loaded kubeconfig whose connection pool fits every reconcile thread (the
    library's default, 5 per CPU, is 10 on 2 cores: with 20 workers, connections were dropped
    and reopened under load)."""
    c = Configuration.get_default_copy()
    c.connection_pool_maxsize = max(c.connection_pool_maxsize or 0, workers + 4)
    return ApiClient(c)


def build_registry(config_path: Optional[str], resync_seconds: float, workers: int) -> kopf.OperatorRegistry:
    cfg = load_config(config_path)
    _load_kube()
    reconciler = Reconciler(Kube(api_client(workers)), cfg, LocalRunner(cfg.local_state_dir))
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
        settings.persistence.finalizer = FINALIZER
        settings.posting.level = logging.WARNING  # log lines are not Events; our Events are explicit
        settings.execution.max_workers = workers
        settings.watching.server_timeout = 300
        settings.networking.error_backoffs = [1, 2, 5, 10]
        settings.peering.priority = peering_priority(os.environ.get("POD_ID"))
        settings.peering.mandatory = False
        configure_watches(settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    register(registry, reconciler, resync_seconds)
    return registry


def run(
    *,
    namespaces: list[str],
    all_namespaces: bool,
    standalone: bool,
    peering: Optional[str],
    liveness: Optional[str],
    metrics_port: Optional[int],
    log_level: str,
    config_path: Optional[str],
    resync_seconds: float,
    workers: int,
) -> int:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = build_registry(config_path or os.environ.get("GLASSBOX_CONFIG"), resync_seconds, workers)
    if metrics_port:
        start_http_server(metrics_port)
    clusterwide = all_namespaces or not namespaces
    asyncio.run(kopf.operator(
        registry=registry,
        standalone=standalone or not peering,
        peering_name=peering,
        clusterwide=clusterwide,
        namespaces=[] if clusterwide else namespaces,
        liveness_endpoint=liveness,
    ))
    return 0
