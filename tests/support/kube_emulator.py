"""A Kubernetes API emulator for tests: kmock's server with the API-server semantics the operator relies on.

Usage (sync or async tests alike; the server runs in its own thread and event loop)::

    with KubeEmulator() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        kube.install_crd(crd)
        ...  # point kopf / the `kubernetes` client (or a subprocess via KUBECONFIG) at it
        assert kube.count_writes("PATCH") == 0

Object semantics live in `kube_emulator_store` (uid, resourceVersion, generation, finalizers, conflicts,
status subresource, server-side apply, namespaces, owner-reference GC, event log); patch algorithms in
`kube_emulator_patches`; selectors and validation in `kube_emulator_fields`; discovery in
`kube_emulator_resources`; URL routing in `kube_emulator_rest`; the fake kubelet in `kube_emulator_kubelet`.
This module adds hosting, watch streams, faults injected before a request takes effect, write accounting
and thread-safe in-process accessors.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import copy
import dataclasses
import json
import pathlib
import threading
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from tests.support.kube_emulator_fields import parse_label_selector
from tests.support.kube_emulator_kubelet import FakeKubelet
from tests.support.kube_emulator_resources import ResourceRegistry, ResourceType
from tests.support.kube_emulator_rest import (
    REASONS,
    WRITE_METHODS,
    RestApi,
    Route,
    decode_body,
    initial_events_end,
    parse_route,
    present,
    selectors,
)
from tests.support.kube_emulator_store import ApiError, Event, ObjectStore

__all__ = ["ApiError", "FakeKubelet", "Fault", "KubeEmulator", "RequestRecord", "ResourceType"]

_CLOSE, _ABORT = object(), object()  # sentinels that end a watch stream gracefully / abruptly


@dataclasses.dataclass
class RequestRecord:
    """One HTTP request as served (status and effect are filled in when it completes)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    status: int = 0
    changed: bool = False  # whether it changed any stored object (a no-op write does not)

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclasses.dataclass
class Fault:
    """A failure injected before a request takes effect (or, with drop_response, after it did)."""

    method: str | None
    path_contains: str | None
    status: int
    times: int | None  # None: forever
    reason: str | None = None
    message: str | None = None
    retry_after: str | None = None
    drop_response: bool = False  # apply the request, then cut the connection before responding
    hits: int = 0

    def matches(self, method: str, path_qs: str) -> bool:
        method_ok = self.method is None or self.method.upper() == method
        remaining = self.times is None or self.hits < self.times
        return method_ok and remaining and (self.path_contains is None or self.path_contains in path_qs)

    def response(self) -> aiohttp.web.Response:
        reason = self.reason or REASONS.get(self.status, "InternalError")
        error = ApiError(self.status, reason, self.message or f"injected fault: {reason}")
        headers = {"Retry-After": self.retry_after or "1"} if self.status == 429 or self.retry_after else {}
        return _json(error.status(), self.status, headers)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        text=json.dumps(payload), status=status, content_type="application/json", headers=headers
    )


@attrs.define(kw_only=True, eq=False)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with real API-server semantics, hosted in a background thread.

    kmock DSL reactions (``kube[kmock.method.GET, '/x'] << 404``) still work and are checked first;
    requests they do not answer go to the emulated API server (kmock's own object dict is unused).
    `get`/`patch`/`delete` are in-process object accessors here, not kmock's HTTP-client shortcuts.
    """

    event_log_limit: int = 10_000
    bookmark_interval: float = 30.0  # idle seconds before a BOOKMARK to watchers that allow them (0: never)
    kubelet: FakeKubelet = attrs.field(init=False)
    _registry: ResourceRegistry = attrs.field(factory=ResourceRegistry, init=False)
    _store: ObjectStore = attrs.field(init=False)
    _rest: RestApi = attrs.field(init=False)
    _records: builtins.list[RequestRecord] = attrs.field(factory=builtins.list, init=False)
    _faults: builtins.list[Fault] = attrs.field(factory=builtins.list, init=False)
    _streams: set[asyncio.Queue[Any]] = attrs.field(factory=set, init=False)
    _expiring_watches: int = attrs.field(default=0, init=False)
    _guard: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _stopping: asyncio.Event | None = attrs.field(default=None, init=False)
    _port: int | None = attrs.field(default=None, init=False)
    _failure: BaseException | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        # kmock's fallbacks serve its own object dict; the store below replaces them, so skip them.
        self._store = ObjectStore(self._registry, event_log_limit=self.event_log_limit)
        self._rest = RestApi(self._store, self._registry)
        self.kubelet = FakeKubelet(self._store)

    # ---- hosting -------------------------------------------------------------------------------------

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> KubeEmulator:
        """Serve on 127.0.0.1:<free port> from a background thread with its own event loop."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="kube-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or self._failure is not None:
            raise RuntimeError("the Kubernetes emulator did not start") from self._failure
        return self

    def stop(self) -> None:
        self.kubelet.stop()
        if self._thread is None or self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._thread = None

    def _thread_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as e:  # surfaced by start()
            self._failure = e
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        async with self:  # kmock's root context: needed by its DSL streams
            runner = aiohttp.web.ServerRunner(
                aiohttp.web.Server(self, handler_cancellation=True, access_log=None), shutdown_timeout=1.0
            )
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._port = runner.addresses[0][1]
            ready.set()
            try:
                await self._stopping.wait()
            finally:
                self.drop_watches()
                await asyncio.sleep(0)
                await runner.cleanup()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def url(self) -> str:  # type: ignore[override]
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-emulator", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "kube-emulator", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "kube-emulator",
                    "context": {"cluster": "kube-emulator", "user": "kube-emulator", "namespace": namespace},
                }
            ],
            "current-context": "kube-emulator",
        }

    def write_kubeconfig(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write a kubeconfig (server URL, insecure, dummy token) for clients and subprocesses."""
        target = pathlib.Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig()))
        return target

    # ---- HTTP ----------------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        route = parse_route(raw_request.path)
        request = self._kmock_request(raw_request, route, body)
        self._requests.append(request)
        record = RequestRecord(raw_request.method, raw_request.path, dict(raw_request.query), raw_request.content_type)
        with self._guard:
            self._records.append(record)
        fault = self._take_fault(raw_request.method, raw_request.path_qs)
        if fault is not None and not fault.drop_response:
            response: aiohttp.web.StreamResponse = fault.response()
        else:
            response, record.changed = await self._respond(raw_request, request, route, body)
        record.status = response.status
        if fault is not None and fault.drop_response and raw_request.transport is not None:
            raw_request.transport.abort()  # the write happened, the client never hears about it
        return response

    def _kmock_request(self, raw: aiohttp.web.BaseRequest, route: Route | None, body: bytes) -> kmock.Request:
        """The request as kmock's DSL sees it (for `kube[...]` reactions and `kube.requests`)."""
        try:
            data = decode_body(body, raw.content_type)
        except ApiError:
            data = None
        resource = kmock.resource(route.group, route.version, route.plural) if route else None
        return kmock.Request(
            id=len(self._requests),
            method=raw.method,
            url=raw.url,
            params=dict(raw.query),
            headers=dict(raw.headers),
            body=body,
            text=body.decode(errors="replace"),
            data=data,
            action=_action(raw.method, route, raw.query),
            resource=resource,
            namespace=route.namespace if route else None,
            name=route.name if route else None,
            subresource=(route.subresource or None) if route else None,
            raw_request=raw,
        )

    async def _respond(
        self, raw: aiohttp.web.BaseRequest, request: kmock.Request, route: Route | None, body: bytes
    ) -> tuple[aiohttp.web.StreamResponse, bool]:
        try:
            return await kmock.RawHandler._handle(self, request), False  # user DSL reactions first
        except NotImplementedError:
            pass
        except kmock.KubernetesError as e:
            error = ApiError(e.status, e.reason or REASONS.get(e.status, "InternalError"), e.message or "")
            return _json(error.status(), e.status), False
        try:
            if route is None and raw.path.strip("/") in ("healthz", "readyz", "livez"):
                return aiohttp.web.Response(text="ok"), False
            if route is None:
                return _json(self._rest.discovery(raw.path)), False
            if route.is_watch(raw.method, raw.query):
                return await self._stream_watch(raw, route), False
            status, payload, changed = self._rest.execute(raw.method, route, dict(raw.query), raw.content_type, body)
            return _json(payload, status), changed
        except ApiError as e:
            return _json(e.status(), e.code), False
        except Exception as e:  # an emulator bug: answer like a real server would, keep it for `kube.errors`
            if self._errors:
                self._errors[-1].append(e)
            return _json(ApiError(500, "InternalError", repr(e)).status(), 500), False

    # ---- watch streams -------------------------------------------------------------------------------

    async def _stream_watch(self, raw: aiohttp.web.BaseRequest, route: Route) -> aiohttp.web.StreamResponse:
        rtype = self._rest.route_type(route)
        query = dict(raw.query)
        labels, fields = selectors(query, route.name)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        try:
            if self._take_expiry():
                raise ApiError(410, "Expired", "too old resource version (injected by the test)")

            def deliver(event: Event) -> None:  # called by the store from any thread
                loop.call_soon_threadsafe(queue.put_nowait, event)

            with self._store.lock:
                since = query.get("resourceVersion")
                initial, watcher = self._store.subscribe(rtype, route.namespace, labels, fields, since, deliver)
                listed_rv = self._store.resource_version
        except ApiError as e:
            await _send(response, {"type": "ERROR", "object": e.status()})
            await response.write_eof()
            return response
        with self._guard:
            self._streams.add(queue)
        try:
            for event_type, obj in initial:
                await _send(response, {"type": event_type, "object": present(rtype, obj)})
            if query.get("sendInitialEvents") == "true":
                await _send(response, initial_events_end(rtype, listed_rv))
            if await self._pump(response, queue, rtype, query) and raw.transport:
                raw.transport.abort()
            else:
                await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            self._store.unsubscribe(watcher)
            with self._guard:
                self._streams.discard(queue)
        return response

    async def _pump(
        self, response: aiohttp.web.StreamResponse, queue: asyncio.Queue[Any], rtype: ResourceType, query: Any
    ) -> bool:
        """Stream live events until the timeout or a drop; True if the connection must be cut."""
        loop = asyncio.get_running_loop()
        seconds = query.get("timeoutSeconds")
        deadline = loop.time() + float(seconds) if seconds else None
        bookmarks = query.get("allowWatchBookmarks") == "true" and self.bookmark_interval > 0
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            idle = self.bookmark_interval if bookmarks else None
            try:
                item = await asyncio.wait_for(queue.get(), min(t for t in (remaining, idle, 1e9) if t is not None))
            except TimeoutError:
                if bookmarks:
                    await self._bookmark(response, queue, rtype)
                continue
            if item is _CLOSE or item is _ABORT:
                return item is _ABORT
            await _send(response, {"type": item[0], "object": present(rtype, item[1])})

    async def _bookmark(
        self, response: aiohttp.web.StreamResponse, queue: asyncio.Queue[Any], rtype: ResourceType
    ) -> None:
        """Tell an idle watcher how far it is, as real servers do about once a minute."""
        with self._store.lock:
            rv = self._store.resource_version
        await asyncio.sleep(0)  # let deliveries scheduled before that version reach the queue first
        if queue.empty():
            meta = {"resourceVersion": str(rv)}
            await _send(
                response,
                {"type": "BOOKMARK", "object": {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}},
            )

    # ---- faults --------------------------------------------------------------------------------------

    def inject_fault(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        status: int = 500,
        times: int | None = 1,
        reason: str | None = None,
        message: str | None = None,
        retry_after: str | None = None,
        drop_response: bool = False,
    ) -> Fault:
        """Fail the next `times` matching requests with `status`, before they change anything."""
        fault = Fault(method, path_contains, status, times, reason, message, retry_after, drop_response)
        with self._guard:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._guard:
            self._faults.clear()
            self._expiring_watches = 0

    def _take_fault(self, method: str, path_qs: str) -> Fault | None:
        with self._guard:
            for fault in self._faults:
                if fault.matches(method, path_qs):
                    fault.hits += 1
                    return fault
        return None

    def expire_next_watch(self, times: int = 1) -> None:
        """The next `times` watch requests get an ERROR event with 410 Gone, then their stream ends."""
        with self._guard:
            self._expiring_watches += times

    def _take_expiry(self) -> bool:
        with self._guard:
            if self._expiring_watches <= 0:
                return False
            self._expiring_watches -= 1
            return True

    def drop_watches(self, abort: bool = False) -> int:
        """End every open watch stream (cleanly, or by cutting the connection); return how many."""
        with self._guard:
            streams = builtins.list(self._streams)
        if self._loop is not None:
            for queue in streams:
                self._loop.call_soon_threadsafe(queue.put_nowait, _ABORT if abort else _CLOSE)
        return len(streams)

    @property
    def active_watches(self) -> int:
        with self._guard:
            return len(self._streams)

    def compact(self) -> None:
        """Forget the watch event log: watches from any older resourceVersion get 410 Gone."""
        self._store.compact()

    # ---- accounting ----------------------------------------------------------------------------------

    def request_log(self) -> builtins.list[RequestRecord]:
        """Every HTTP request served since the last reset, in arrival order."""
        with self._guard:
            return builtins.list(self._records)

    def write_records(self) -> builtins.list[RequestRecord]:
        return [record for record in self.request_log() if record.is_write]

    def writes(self) -> builtins.list[tuple[str, str]]:
        """(verb, path) of every POST/PUT/PATCH/DELETE request, including failed and no-op ones."""
        return [(record.method, record.path) for record in self.write_records()]

    def write_counts(self) -> collections.Counter[str]:
        return collections.Counter(record.method for record in self.write_records())

    def count_writes(self, method: str | None = None, path_contains: str = "", changed_only: bool = False) -> int:
        return sum(
            1
            for record in self.write_records()
            if (method is None or record.method == method.upper())
            and path_contains in record.path
            and (record.changed or not changed_only)
        )

    def reset_counts(self) -> None:
        with self._guard:
            self._records.clear()
        self.kubelet.writes = 0

    # ---- in-process access (thread-safe; not recorded as requests) ------------------------------------

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    def resource_type(self, api_version: str, kind_or_plural: str) -> ResourceType:
        rtype = self._registry.resolve(api_version, kind_or_plural)
        if rtype is None:
            raise KeyError(f"unknown resource {kind_or_plural!r} in {api_version!r}")
        return rtype

    def get(  # type: ignore[override]  # kmock's HTTP-client shortcuts need kmock.Server, unused here
        self, api_version: str, kind_or_plural: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        rtype = self.resource_type(api_version, kind_or_plural)
        found = self._store.find(rtype, namespace, name)
        return copy.deepcopy(present(rtype, found)) if found is not None else None

    def list(
        self, api_version: str, kind_or_plural: str, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        rtype = self.resource_type(api_version, kind_or_plural)
        items, _ = self._store.select(rtype, namespace, parse_label_selector(label_selector), [])
        return [copy.deepcopy(present(rtype, body)) for body in items]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        rtype = self.resource_type(obj["apiVersion"], obj["kind"])
        result = self._store.create(rtype, obj.get("metadata", {}).get("namespace"), obj)
        return copy.deepcopy(present(rtype, result.body))

    def patch(  # type: ignore[override]
        self,
        api_version: str,
        kind_or_plural: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: str = "merge",
    ) -> dict[str, Any]:
        """Patch the main resource; patch_type is "merge", "json" or "strategic"."""
        rtype = self.resource_type(api_version, kind_or_plural)
        result = self._store.patch(rtype, namespace, name, patch_type, patch)
        return copy.deepcopy(present(rtype, result.body))

    def patch_status(
        self, api_version: str, kind_or_plural: str, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch `.status` (through the status subresource where the kind has one)."""
        rtype = self.resource_type(api_version, kind_or_plural)
        subresource = "status" if rtype.has_status else ""
        result = self._store.patch(rtype, namespace, name, "merge", {"status": status}, subresource=subresource)
        return copy.deepcopy(present(rtype, result.body))

    def delete(  # type: ignore[override]
        self,
        api_version: str,
        kind_or_plural: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
    ) -> None:
        rtype = self.resource_type(api_version, kind_or_plural)
        self._store.delete(rtype, namespace, name, propagation)

    def ensure_namespace(self, name: str) -> dict[str, Any]:
        existing = self.get("v1", "namespaces", name)
        return existing or self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def install_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Create (or replace the spec of) a CustomResourceDefinition; its resources are served at once."""
        crd_type = self.resource_type("apiextensions.k8s.io/v1", "customresourcedefinitions")
        name = crd["metadata"]["name"]
        if self._store.find(crd_type, None, name) is None:
            return self.create({**crd, "apiVersion": crd_type.api_version, "kind": crd_type.kind})
        return self.patch(crd_type.api_version, crd_type.plural, name, {"spec": crd["spec"]})


def _action(method: str, route: Route | None, query: Any) -> kmock.action | None:
    """kmock's notion of the request's Kubernetes action, for `kube[kmock.action.WATCH]`-style filters."""
    if route is None:
        return None
    if method == "GET":
        listing = kmock.action.FETCH if route.name else kmock.action.LIST
        return kmock.action.WATCH if route.is_watch(method, query) else listing
    actions = {
        "POST": kmock.action.CREATE,
        "PATCH": kmock.action.UPDATE,
        "PUT": kmock.action.UPDATE,
        "DELETE": kmock.action.DELETE,
    }
    return actions.get(method)


async def _send(response: aiohttp.web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event).encode() + b"\n")
