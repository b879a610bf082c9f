"""One startup handler: every kopf setting, the API client, telemetry."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from soa_operator import labels, telemetry
from soa_operator.handlers.diffbase import LevelBasedDiffBaseStorage
from soa_operator.kube.client import KubeClient
from soa_operator.reconcile.tenant import TenantReconciler
from soa_operator.runtime import Runtime
from soa_operator.settings import get_settings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = get_settings()
    settings.persistence.finalizer = labels.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=labels.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = LevelBasedDiffBaseStorage()
    settings.watching.server_timeout = ours.watch_server_timeout
    settings.watching.client_timeout = ours.watch_client_timeout
    settings.watching.reconnect_backoff = 1.0
    settings.peering.standalone = True  # one replica, Recreate strategy: no peering needed
    settings.posting.level = logging.WARNING  # events only for problems: each one is an API write
    settings.execution.max_workers = 8
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]

    telemetry.setup_tracing()
    telemetry.start_metrics(ours.metrics_port)
    client = KubeClient.from_environment(on_write=telemetry.count_write)
    memo.runtime = Runtime(
        settings=ours,
        client=client,
        reconciler=TenantReconciler(client, ours),
        executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="reconcile"),
    )


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        runtime.executor.shutdown(wait=False, cancel_futures=True)
