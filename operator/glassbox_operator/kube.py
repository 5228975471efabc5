"""The one place that talks to the Kubernetes API: children (server-side apply, get, delete)
and our resources' status subresource."""

from __future__ import annotations

from typing import Any, Optional

from kubernetes import dynamic
from kubernetes.client import ApiClient
from kubernetes.dynamic.exceptions import NotFoundError

from glassbox_api.constants import API_VERSION, FIELD_MANAGER
from glassbox_api.kinds import KINDS


class Kube:
    """Server-side apply under one field manager; reads return plain dicts or None."""

    def __init__(self, api_client: Optional[ApiClient] = None):
        self.client = dynamic.DynamicClient(api_client or ApiClient())
        self._resources: dict[tuple[str, str], Any] = {}

    def _resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self.client.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        res = self._resource(obj["apiVersion"], obj["kind"])
        out = self.client.server_side_apply(
            res, body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True,
        )
        return out.to_dict()

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        try:
            return self.client.get(self._resource(api_version, kind), name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete a child (its pods go in the background); False when it was already gone."""
        try:
            self.client.delete(self._resource(api_version, kind), name=name, namespace=namespace,
                               body={"propagationPolicy": "Background"})
            return True
        except NotFoundError:
            return False

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> Optional[str]:
        """Merge-patch the status subresource; the resourceVersion it produced, or None when the object is gone."""
        try:
            out = self.client.patch(self._resource(api_version, kind).status, body={"status": patch}, name=name,
                                    namespace=namespace, content_type="application/merge-patch+json")
        except NotFoundError:
            return None
        return out.metadata.resourceVersion

    def get_glassbox(self, kind: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        if kind not in KINDS:
            return None
        return self.get(API_VERSION, kind, namespace, name)
