"""The operator's only door to the Kubernetes API (besides kopf's own watches).

A thin layer over the official client's ``DynamicClient``: it speaks plain dicts, turns the
client's exceptions into a few meaningful ones, and counts writes by verb for the metrics.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, ResourceNotFoundError
from kubernetes.utils import parse_quantity as _parse_quantity

from soa_operator import labels

T = TypeVar("T")

WriteObserver = Callable[[str], None]


class KubeError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status in (0, 409, 429) or self.status >= 500


def load_api_client(kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """An ApiClient from ``kubeconfig``, ``$KUBECONFIG``/~/.kube/config, or in-cluster credentials."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or os.path.exists(os.path.expanduser("~/.kube/config")):
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        k8s_config.load_incluster_config()
        configuration = k8s_client.Configuration.get_default_copy()
    configuration.retries = 0  # retries are the reconcile loop's job, with backoff
    return k8s_client.ApiClient(configuration)


def _to_dict(response: Any) -> dict[str, Any]:
    """Decode a raw response: the DynamicClient's ResourceInstance wrapping costs as much as the
    request itself on large lists, and we only ever want plain dicts."""
    result: dict[str, Any] = json.loads(response.data)
    return result


class KubeClient:
    """Plain-dict CRUD, server-side apply and status patches for any kind the server serves."""

    def __init__(self, api_client: k8s_client.ApiClient, on_write: WriteObserver | None = None) -> None:
        self._api_client = api_client
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()
        self._on_write = on_write

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, on_write: WriteObserver | None = None) -> KubeClient:
        return cls(load_api_client(kubeconfig), on_write=on_write)

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:  # discovery is lazy and not thread-safe on first use
            try:
                if self._dynamic is None:
                    self._dynamic = DynamicClient(self._api_client)
                return self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise KubeError(404, f"the API server does not serve {kind} in {api_version}") from None
            except ApiException as exc:
                raise KubeError(int(exc.status or 0), _short_reason(exc)) from None
            except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                raise KubeError(0, f"{type(exc).__name__}: {exc}") from None

    def _call(self, fn: Callable[[], T], verb: str | None = None) -> T:
        try:
            result = fn()
        except NotFoundError:
            raise
        except ApiException as exc:
            raise KubeError(int(exc.status or 0), _short_reason(exc)) from None
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            raise KubeError(0, f"{type(exc).__name__}: {exc}") from None
        if verb and self._on_write:
            self._on_write(verb)
        return result

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        res = self._resource(api_version, kind)
        try:
            return _to_dict(self._call(lambda: res.get(name=name, namespace=namespace, serialize=False)))
        except NotFoundError:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        res = self._resource(api_version, kind)
        try:
            listing = self._call(lambda: res.get(namespace=namespace, label_selector=label_selector, serialize=False))
        except NotFoundError:
            return []
        items: list[dict[str, Any]] = []
        for item in _to_dict(listing).get("items") or []:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            items.append(item)
        return items

    def apply(
        self, obj: Mapping[str, Any], field_manager: str = labels.FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply under ``field_manager``; ``force`` takes over fields others own."""
        res = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return _to_dict(
            self._call(
                lambda: res.server_side_apply(
                    body=dict(obj),
                    name=meta["name"],
                    namespace=meta.get("namespace"),
                    field_manager=field_manager,
                    force_conflicts=force,
                    serialize=False,
                ),
                verb="apply",
            )
        )

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create ``obj``; None if it already exists (the existing object is left untouched)."""
        res = self._resource(obj["apiVersion"], obj["kind"])
        try:
            created = self._call(
                lambda: res.create(body=dict(obj), namespace=obj["metadata"].get("namespace"), serialize=False),
                verb="create",
            )
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise
        return _to_dict(created)

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Mapping[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON merge patch of an object or its status; None if the object is gone."""
        res = self._resource(api_version, kind)
        if subresource:
            res = getattr(res, subresource)
        try:
            patched = self._call(
                lambda: res.patch(
                    body=dict(patch),
                    name=name,
                    namespace=namespace,
                    content_type="application/merge-patch+json",
                    serialize=False,
                ),
                verb="patch",
            )
        except NotFoundError:
            return None
        return _to_dict(patched)

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, propagation: str = "Background"
    ) -> bool:
        """Delete (dependents by GC, or ``propagation="Orphan"``); False if it was already gone."""
        res = self._resource(api_version, kind)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self._call(lambda: res.delete(name=name, namespace=namespace, body=body, serialize=False), verb="delete")
        except NotFoundError:
            return False
        return True


def _short_reason(exc: ApiException) -> str:
    """The API server's own message, without headers or bodies that could carry data."""
    import json

    try:
        body = json.loads(exc.body or "{}")
        message = str(body.get("message") or exc.reason or "")
    except (TypeError, ValueError):
        message = str(exc.reason or "")
    return f"{exc.status} {message}"[:500]


def parse_quantity(value: str) -> Decimal:
    """A Kubernetes quantity ("50Gi", "500m") as a Decimal."""
    result: Decimal = _parse_quantity(value)
    return result


__all__ = ["ConflictError", "KubeClient", "KubeError", "load_api_client", "parse_quantity"]
