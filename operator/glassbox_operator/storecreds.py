"""The S3 credentials the operator itself uses (to read run manifests: progress, fromRun, the
serving URI), and only where they belong:

- the configured endpoint (chart `storage.endpoint`): the operator's own credentials, from the
  Secret `storage.operatorCredentialsSecret` in its own namespace, read through the API (the chart
  grants `get` on that one Secret), else from its environment;
- an endpoint a spec names (spec.storage.endpoint): only the Secret that spec references
  (spec.storage.secretRef, in the resource's namespace), read through the API where RBAC allows it
  (chart `rbac.secretNames`). The configured credentials never go to another host; a spec naming one
  without a secretRef is refused before anything runs (render.common.store_target).

Secrets are read at most every TTL seconds per name (rotation is picked up), and never logged.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr

from glassbox_api.podcontract import Env
from glassbox_api.store import S3Settings, StoreError

from .config import OperatorConfig
from .render.common import StoreTarget

TTL_SECONDS = 30.0
ACCESS_KEYS = ("AWS_ACCESS_KEY_ID", "accessKey", "access-key", "access_key")
SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "secretKey", "secret-key", "secret_key")
TOKEN_KEYS = ("AWS_SESSION_TOKEN", "sessionToken", "session-token")


@dataclass(frozen=True)
class Credentials:
    """An access key pair; the secret parts never print."""

    access_key: Optional[str] = field(default=None, repr=False)
    secret_key: Optional[SecretStr] = field(default=None, repr=False)
    session_token: Optional[SecretStr] = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """As the AWS_* variables a workload process reads."""
        out: dict[str, str] = {}
        if self.access_key and self.secret_key:
            out = {Env.AWS_ACCESS_KEY_ID: self.access_key, Env.AWS_SECRET_ACCESS_KEY: self.secret_key.get_secret_value()}
        if self.session_token:
            out["AWS_SESSION_TOKEN"] = self.session_token.get_secret_value()
        return out


NONE = Credentials()


def _pick(data: Mapping[str, Any], keys: tuple[str, ...]) -> Optional[str]:
    for k in keys:
        if data.get(k):
            return base64.b64decode(data[k]).decode("utf-8").strip()
    return None


class StoreCredentials:
    """Credentials per store target, for the operator's own reads (see the module docstring)."""

    def __init__(self, kube: Any, config: OperatorConfig, env: Optional[Mapping[str, str]] = None,
                 ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.kube, self.config, self.ttl, self.clock = kube, config, ttl, clock
        self.env = dict(os.environ if env is None else env)
        self._cache: dict[tuple[str, str], tuple[float, Credentials]] = {}
        self._lock = threading.Lock()

    def for_target(self, namespace: str, target: StoreTarget) -> Credentials:
        """The credentials for target (NONE for a local directory store)."""
        if not target.endpoint:
            return NONE
        if target.configured:
            return self._configured(target)
        if not target.secret:  # store_target refuses this; never fall back to our own
            return NONE
        return self._secret(namespace, target.secret, f"spec.storage.secretRef of endpoint {target.endpoint}")

    def settings(self, namespace: str, target: StoreTarget) -> Optional[S3Settings]:
        """S3 settings for target: its endpoint, with only the credentials that belong to it."""
        if not target.endpoint:
            return None
        c = self.for_target(namespace, target)
        return S3Settings(endpoint=target.endpoint, secure=target.secure, region=target.region,
                          access_key=c.access_key, secret_key=c.secret_key, session_token=c.session_token)

    def _configured(self, target: StoreTarget) -> Credentials:
        name = self.config.storage.operator_credentials_secret
        if name:
            ns = self.config.operator_namespace or self.env.get("POD_NAMESPACE") or ""
            if not ns:
                raise StoreError("storage.operatorCredentialsSecret is set but the operator's namespace is unknown "
                                 "(operatorNamespace in the config, which the chart sets, or POD_NAMESPACE)")
            return self._secret(ns, name, "storage.operatorCredentialsSecret")
        # No Secret configured: the operator's environment (or its mounted Secret directory), for
        # the configured endpoint only.
        s = S3Settings.from_env(self.env, endpoint=target.endpoint, secure=target.secure, region=target.region)
        return Credentials(s.access_key, s.secret_key, s.session_token)

    def _secret(self, namespace: str, name: str, what: str) -> Credentials:
        key, now = (namespace, name), self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            obj = self.kube.get("v1", "Secret", namespace, name)
        except ApiException as exc:
            raise StoreError(f"cannot read the credentials Secret {namespace}/{name} ({what}): "
                             f"{exc.status} {exc.reason}") from None
        if obj is None:
            raise StoreError(f"the credentials Secret {namespace}/{name} ({what}) does not exist")
        data = obj.get("data") or {}
        access, secret = _pick(data, ACCESS_KEYS), _pick(data, SECRET_KEYS)
        if not (access and secret):
            raise StoreError(f"the credentials Secret {namespace}/{name} ({what}) has no AWS_ACCESS_KEY_ID "
                             "and AWS_SECRET_ACCESS_KEY")
        token = _pick(data, TOKEN_KEYS)
        creds = Credentials(access, SecretStr(secret), SecretStr(token) if token else None)
        with self._lock:
            self._cache[key] = (now, creds)
        return creds
