"""Operator scale benchmark: N SOATenants created at once against the Kubernetes emulator.

For each N (a fresh emulator each time; emulated readiness for each workload the operator writes,
see ScopedKubelet, or FakeKubelet's auto mode with --kubelet auto; the real operator as a
subprocess) it measures:

* seconds from the first create until every tenant is phase Ready with observedGeneration current;
* operator writes per provisioned tenant, counted at the emulator's HTTP layer (status < 400),
  split into object writes, SOATenant status patches, SOATenant patches (kopf's finalizer) and
  anything else, against the DESIGN.md §7 bound of objects + 3 status patches;
* writes during an idle period of at least one full resync interval, after checking in the request
  log that every tenant was read again (must be 0); the idle period starts once the operator has
  written nothing for a few seconds after all were Ready (writes until then count as provisioning);
* the operator's RSS (VmRSS, peak VmHWM) once all are Ready and its CPU seconds while provisioning;
* the CPU of the benchmark process itself, which hosts the emulator, its fake kubelet and the poller.

The first row (N=50 unless --baseline says otherwise, always measured in the same run) is the
baseline for the per-tenant time ratio. Everything is on loopback and bounded in time: each N has
a hard provisioning deadline (60 s + 0.5 s per tenant by default) and a hard idle deadline, and a
timeout (or SIGTERM/Ctrl-C) is reported with what was measured so far, not waited out.

Usage: .venv/bin/python bench/operator_scale.py [--tenants 50,200,1000] [--resync 30] [--profile DIR]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(ROOT))

from tests.support.kube_emulator import KubeEmulator, RequestRecord  # noqa: E402
from tests.support.kube_emulator_kubelet import (  # noqa: E402  # FakeKubelet's own status builders
    _deployment_status,
    _finished,
    _job_status,
    _statefulset_status,
)

from bench_report import Profiler, fmt, log, table  # noqa: E402
from soa_operator import labels  # noqa: E402
from soa_operator.api.crd import build_crd  # noqa: E402
from soa_operator.reconcile.kinds import CHART_KINDS, SECRET  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.5
SETTLE_SECONDS = 3.0  # after the idle re-reads: let those reconciles finish (they must write nothing)
QUIET_SECONDS = 6.0  # after all Ready: provisioning is over once the operator wrote nothing for this long
QUIET_MAX_SECONDS = 30.0
OPERATOR_START_TIMEOUT = 30.0
STATUS_PATCH_BUDGET = 3  # DESIGN.md §7: objects + 3 status patches
RSS_TARGET_MB = 250.0  # DESIGN.md §7: at 1,000 tenants
READY_TARGET_S = 60.0  # DESIGN.md §7: 200 tenants at once, on 2 cores
READY_TARGET_N = 200
RSS_TARGET_N = 1000

TENANT_RE = r"t\d{4,}"
OBJECT_PATH = re.compile(rf"/namespaces/soa-({TENANT_RE})(?:/|$)")
STATUS_PATH = re.compile(rf"/{labels.PLURAL}/({TENANT_RE})/status$")
TENANT_PATH = re.compile(rf"/{labels.PLURAL}/({TENANT_RE})$")
NAMESPACE_READ = re.compile(rf"^/api/v1/namespaces/soa-({TENANT_RE})$")
SECRETS_READ = re.compile(rf"^/api/v1/namespaces/soa-({TENANT_RE})/secrets$")
WORKLOAD_WRITE = re.compile(
    rf"^/apis/(apps|batch)/v1/namespaces/(soa-{TENANT_RE})/(deployments|statefulsets|jobs)(?:/([^/]+))?$"
)


def tenant_name(i: int) -> str:
    return f"t{i:04d}"


def tenant_manifest(name: str) -> dict[str, Any]:
    """Same shape as tests/operator/conftest.py's tenant_manifest(): defaults for everything else."""
    spec = {"displayName": f"Ministry {name}", "version": "0.1.0", "deletionProtection": False}
    spec["deletionPolicy"] = "Retain"
    return {"apiVersion": labels.API_VERSION, "kind": labels.KIND, "metadata": {"name": name}, "spec": spec}


# ---- /proc readings ----------------------------------------------------------------------------------


def cpu_seconds(stat_path: str) -> float:
    """utime + stime of a process or thread from its /proc stat file (0 if it is gone)."""
    try:
        text = Path(stat_path).read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine used (from /proc/stat), to see who else was busy."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class BenchCpu:
    """CPU of this process (emulator + kubelet + poller), and of the emulator and kubelet threads."""

    THREADS = ("kube-emulator", "fake-kubelet")

    def __init__(self) -> None:
        self._start = self.sample()

    def sample(self) -> dict[str, float]:
        sample = {"process": cpu_seconds("/proc/self/stat")}
        for thread in threading.enumerate():
            if thread.name in self.THREADS and thread.native_id is not None:
                sample[thread.name] = cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")
        return sample

    def since_start(self) -> dict[str, float]:
        now = self.sample()
        return {key: now[key] - self._start.get(key, 0.0) for key in now}


# ---- the operator subprocess -------------------------------------------------------------------------


class Operator:
    """`soa operator run` as a child, the way tests/support/operator_process.py starts it."""

    def __init__(self, kubeconfig: Path, log_path: Path, resync: float, retry: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # no exporter: loopback only
        env.update(
            KUBECONFIG=str(kubeconfig),
            NO_PROXY="127.0.0.1,localhost",
            SOA_OPERATOR_METRICS_PORT="0",
            SOA_OPERATOR_LOG_FORMAT="json",
            SOA_OPERATOR_RESYNC_SECONDS=str(resync),
            SOA_OPERATOR_RETRY_SECONDS=str(retry),
        )
        self.log_path = log_path
        self._log = log_path.open("ab")
        cmd = [sys.executable, "-m", "soa_operator.cli.main", "operator", "run"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(f"/proc/{self.pid}/stat")

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def log_summary(self) -> tuple[dict[str, int], list[str]]:
        """Log lines by level, and the most frequent warning/error messages (with their counts)."""
        levels: collections.Counter[str] = collections.Counter()
        problems: collections.Counter[str] = collections.Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                levels["unparsed"] += 1
                continue
            level = str(entry.get("level", "?"))
            levels[level] += 1
            if level in ("warning", "error", "critical"):
                message = re.sub(TENANT_RE, "<t>", str(entry.get("message", "")))[:160]
                problems[f"{level}: {message}"] += 1
        return dict(levels), [f"{count}x {text}" for text, count in problems.most_common(5)]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ScopedKubelet:
    """Emulated readiness like ``kube.kubelet.auto``, but only for the workloads the operator just wrote.

    It reads the emulator's request log every ``interval`` and, for each Deployment, StatefulSet or Job
    the operator wrote, sets the status FakeKubelet would set (same status builders: ready replicas
    at the current generation, Jobs Complete) through the emulator's in-process ``patch_status``, so
    its writes never count as operator writes. It does not create StatefulSet PVCs (the operator does
    not read them while provisioning).

    FakeKubelet's auto mode re-patches every Deployment and StatefulSet of the whole cluster (a deep
    copy each) on every workload change, holding the store lock; past a few dozen tenants that pass
    saturates a core and starves the API server, and even its namespace-scoped ``mark_ready`` scans
    every stored object. Either way the benchmark would measure the fake kubelet, not the operator.
    ``--kubelet auto`` keeps FakeKubelet's mode for comparison.
    """

    def __init__(self, kube: KubeEmulator, interval: float = 0.05) -> None:
        self.kube = kube
        self.interval = interval
        self.writes = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-kubelet", daemon=True)

    def start(self) -> ScopedKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        seen = 0
        while not self._halt.wait(self.interval):
            records = self.kube.request_log()
            seen = 0 if len(records) < seen else seen  # the log was reset
            dirty: set[tuple[str, str, str, str | None]] = set()
            for record in records[seen:]:
                if record.status == 0:  # still in flight: its effect is not stored yet, look again next time
                    break
                seen += 1
                written = record.method != "DELETE" and record.is_write and record.status < 400
                if written and (match := WORKLOAD_WRITE.match(record.path)):
                    dirty.add(match.groups())  # (group, namespace, plural, name or None)
            for group, namespace, plural, name in sorted(dirty, key=str):
                if name is None:  # a POST to the collection: fall back to the namespace-wide pass
                    self.kube.kubelet.mark_ready(namespace)
                    self.kube.kubelet.finish_jobs(namespace)
                else:
                    self._settle(f"{group}/v1", plural, name, namespace)

    def _settle(self, api_version: str, plural: str, name: str, namespace: str) -> None:
        obj = self.kube.get(api_version, plural, name, namespace)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        if plural == "deployments":
            status = _deployment_status(obj)
        elif plural == "statefulsets":
            status = _statefulset_status(obj)
        elif _finished(obj) or (obj.get("spec") or {}).get("suspend"):
            return
        else:
            status = _job_status(obj, succeed=True)
        before = obj["metadata"].get("resourceVersion")
        after = self.kube.patch_status(api_version, plural, name, status, namespace)
        self.writes += after["metadata"].get("resourceVersion") != before


PROJECT_CODE = ("soa_operator/", "tests/support/", "operator_scale.py")


def summarize_profile(path: Path, top: int = 12) -> dict[str, list[tuple[float, str]]]:
    """Where the samples of py-spy's collapsed stacks went: by the deepest frame in project code
    (soa_operator, the emulator, this benchmark) and by leaf function (self time)."""
    if not path.exists():
        return {}
    ours: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [name for name in map(_frame_name, stack.split(";")) if name]
        project = [name for name in frames if name.startswith(PROJECT_CODE)]
        ours[project[-1] if project else "(no project frame: kopf, asyncio, aiohttp...)"] += count
        if frames:
            leaf[frames[-1]] += count
    if not total:
        return {}
    return {
        "deepest project frame": [(100 * n / total, name) for name, n in ours.most_common(top)],
        "leaf (self)": [(100 * n / total, name) for name, n in leaf.most_common(top)],
    }


def _frame_name(frame: str) -> str:
    """'reconcile (soa_operator/reconcile/tenant.py:123)' -> 'soa_operator/reconcile/tenant.py:reconcile'."""
    match = re.match(r"(.+?) \((.+?)(?::\d+)?\)$", frame.strip())
    if not match:
        return frame.strip()
    function, filename = match.groups()
    if function.startswith("process ") or function.startswith("thread "):
        return ""
    for marker in ("site-packages/", f"{ROOT}/operator/", f"{ROOT}/bench/", f"{ROOT}/", "lib/python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{function}"


# ---- one run -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    n: int
    ready: int = 0
    timed_out: bool = False
    seconds_to_ready: float | None = None
    ready_p50: float | None = None
    ready_p90: float | None = None
    operator_start_s: float = 0.0
    objects_per_tenant: float = 0.0
    objects_min: int = 0
    objects_max: int = 0
    writes: int = 0
    object_writes: int = 0
    status_patches: int = 0
    tenant_patches: int = 0
    other_writes: int = 0
    failed_writes: int = 0
    noop_writes: int = 0
    tenants_over_bound: int = 0  # every write counted, kopf's finalizer patch included
    tenants_over_status_budget: int = 0  # object writes != objects or > 3 status patches (finalizer apart)
    max_status_patches: int = 0
    provisioning_reads: int = 0
    provisioning_reconciles: int = 0  # namespace reads: each reconcile's observe pass starts with one
    other_write_paths: list[str] = dataclasses.field(default_factory=list)
    idle_seconds: float | None = None
    idle_writes: int | None = None
    idle_failed_writes: int | None = None
    idle_tenants_read: int = 0
    idle_reads: int = 0
    idle_reconciles: int = 0  # namespace reads: each reconcile's observe pass starts with one
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    rss_after_idle_mb: float | None = None
    operator_cpu_s: float = 0.0
    operator_idle_cpu_s: float | None = None
    bench_cpu_s: float = 0.0
    bench_rss_mb: float = 0.0
    others_cpu_s: float = 0.0  # every other process on the machine (py-spy included when profiling)
    phases: dict[str, int] = dataclasses.field(default_factory=dict)
    objects: list[int] = dataclasses.field(default_factory=list, repr=False)
    quiet_after_s: float | None = None  # how long after all-Ready the operator's writes stopped
    late_writes: int = 0  # writes after all-Ready by reconciles that started before it (provisioning's)
    emulator_cpu_s: float = 0.0
    kubelet_cpu_s: float = 0.0
    kubelet_writes: int = 0
    log_levels: dict[str, int] = dataclasses.field(default_factory=dict)
    log_problems: list[str] = dataclasses.field(default_factory=list)
    profile: dict[str, dict[str, list[tuple[float, str]]]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def writes_per_tenant(self) -> float:
        return self.writes / self.n

    @property
    def target_per_tenant(self) -> float:
        return self.objects_per_tenant + STATUS_PATCH_BUDGET


def provisioning_deadline(n: int, args: argparse.Namespace) -> float:
    return args.deadline_base + args.deadline_per_tenant * n


def run_one(result: Result, args: argparse.Namespace, workdir: Path) -> None:
    n = result.n
    names = [tenant_name(i) for i in range(1, n + 1)]
    log(f"N={n}: starting a fresh emulator and the operator (resync {args.resync:g} s)")
    with KubeEmulator() as kube:
        kube.install_crd(build_crd())
        scoped = ScopedKubelet(kube) if args.kubelet == "scoped" else None
        kube.kubelet.auto = scoped is None
        kubeconfig = kube.write_kubeconfig(workdir / f"kubeconfig-{n}")
        operator = Operator(kubeconfig, workdir / f"operator-{n}.log", args.resync, args.retry)
        profilers: list[Profiler] = []
        try:
            started = time.monotonic()
            wait_for_operator(kube, operator)
            result.operator_start_s = time.monotonic() - started
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                profilers = [
                    Profiler(operator.pid, args.profile / f"operator-{n}.txt", args.profile_rate),
                    Profiler(os.getpid(), args.profile / f"bench-{n}.txt", args.profile_rate),
                ]
                time.sleep(1.0)  # let py-spy attach before the clock starts
            mark = provision(kube, operator, names, result, args, scoped)
            for profiler in profilers:
                profiler.stop()
            for profiler in profilers:
                result.profile[profiler.output.stem] = summarize_profile(profiler.output)
            if not result.timed_out:
                idle(kube, operator, names, mark, result, args)
        finally:
            if scoped is not None:
                scoped.stop()
            for profiler in profilers:
                profiler.stop()
            if not operator.alive():
                result.notes.append(f"operator exited with {operator.proc.returncode}")
                print(operator.log_tail(), file=sys.stderr)
            operator.stop()
            result.log_levels, result.log_problems = operator.log_summary()
            kube.kubelet.auto = False


def wait_for_operator(kube: KubeEmulator, operator: Operator) -> None:
    """Until kopf watches SOATenants (it lists them first, then watches)."""
    deadline = time.monotonic() + OPERATOR_START_TIMEOUT
    while time.monotonic() < deadline:
        if not operator.alive():
            raise RuntimeError("the operator exited at startup:\n" + operator.log_tail())
        if any(r.query.get("watch") in ("true", "1") and labels.PLURAL in r.path for r in kube.request_log()):
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise RuntimeError(f"the operator did not watch {labels.PLURAL} within {OPERATOR_START_TIMEOUT:g} s")


def provision(
    kube: KubeEmulator,
    operator: Operator,
    names: list[str],
    result: Result,
    args: argparse.Namespace,
    scoped: ScopedKubelet | None = None,
) -> int:
    """Create every tenant at once, wait until all are Ready; returns the request-log mark after it."""
    n = len(names)
    deadline_s = provisioning_deadline(n, args)
    kube.reset_counts()
    if scoped is not None:
        scoped.start()
    bench_cpu = BenchCpu()
    cpu0, busy0 = operator.cpu(), busy_cpu_seconds()
    t0 = time.monotonic()
    for name in names:
        kube.create(tenant_manifest(name))
    log(f"N={n}: created {n} tenants in {time.monotonic() - t0:.2f} s; waiting (deadline {deadline_s:g} s)")
    ready_at: dict[str, float] = {}
    next_report = t0 + 10
    while True:
        now = time.monotonic()
        for tenant in kube.list(labels.API_VERSION, labels.PLURAL):
            name = tenant["metadata"]["name"]
            if name not in ready_at and is_ready(tenant):
                ready_at[name] = now - t0
        result.ready = len(ready_at)
        result.operator_cpu_s = operator.cpu() - cpu0  # kept current: an interrupted run still reports
        result.rss_mb, result.hwm_mb = memory_mb(operator.pid)
        if len(ready_at) == n:
            break
        if not operator.alive():
            result.notes.append("operator died while provisioning")
            break
        if now - t0 > deadline_s:
            result.timed_out = True
            result.notes.append(f"timeout: {len(ready_at)}/{n} Ready after {deadline_s:g} s")
            break
        if now >= next_report:
            log(f"N={n}: {len(ready_at)}/{n} Ready after {now - t0:.0f} s")
            next_report += 10
        time.sleep(POLL_SECONDS if n <= 200 else 4 * POLL_SECONDS)  # each poll deep-copies every tenant
    result.ready = len(ready_at)
    result.operator_cpu_s = operator.cpu() - cpu0
    result.rss_mb, result.hwm_mb = memory_mb(operator.pid)
    cpu = bench_cpu.since_start()
    result.bench_cpu_s = cpu["process"]
    result.bench_rss_mb = memory_mb(os.getpid())[0]
    result.others_cpu_s = max(0.0, busy_cpu_seconds() - busy0 - result.operator_cpu_s - result.bench_cpu_s)
    tenants = kube.list(labels.API_VERSION, labels.PLURAL)
    result.phases = dict(collections.Counter(str((t.get("status") or {}).get("phase")) for t in tenants))
    result.emulator_cpu_s = cpu.get("kube-emulator", 0.0)
    result.kubelet_cpu_s = cpu.get("fake-kubelet", 0.0)
    if not result.timed_out and result.ready == n:
        result.seconds_to_ready = max(ready_at.values())
        times = sorted(ready_at.values())
        result.ready_p50 = times[len(times) // 2]
        result.ready_p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        log(f"N={n}: all Ready in {result.seconds_to_ready:.1f} s; waiting for {QUIET_SECONDS:g} s without writes")
        result.quiet_after_s = wait_for_quiet(kube)
    records = kube.request_log()
    result.kubelet_writes = kube.kubelet.writes + (scoped.writes if scoped is not None else 0)
    result.objects = count_objects(kube, result)
    classify_provisioning(records, names, result.objects, result)
    return len(records)  # idle() counts from here


def wait_for_quiet(kube: KubeEmulator) -> float:
    """Wait until the operator made no write for QUIET_SECONDS (at most QUIET_MAX_SECONDS); returns the wait.

    Writes still in flight after all are Ready (a status write a reconcile decided on a stale view, a
    coalesced status update landing late) belong to provisioning, not to the idle phase measured next.
    """
    start = time.monotonic()
    writes, quiet_since = -1, start
    while time.monotonic() - start < QUIET_MAX_SECONDS:
        now_writes = sum(record.is_write for record in kube.request_log())
        if now_writes != writes:
            writes, quiet_since = now_writes, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            break
        time.sleep(0.5)
    return time.monotonic() - start


def is_ready(tenant: dict[str, Any]) -> bool:
    status = tenant.get("status") or {}
    generation = tenant.get("metadata", {}).get("generation")
    return status.get("phase") == "Ready" and status.get("observedGeneration") == generation


def count_objects(kube: KubeEmulator, result: Result) -> list[int]:
    """Objects the operator owns per tenant: every chart kind and Secret with its labels, + the Namespace."""
    per_namespace: collections.Counter[str] = collections.Counter()
    selector = f"{labels.MANAGED_BY}={labels.MANAGED_BY_VALUE}"
    for kind in (*CHART_KINDS, SECRET):
        for obj in kube.list(kind.api_version, kind.kind, label_selector=selector):
            per_namespace[obj["metadata"].get("namespace", "")] += 1
    counts = [per_namespace.get(f"soa-{tenant_name(i)}", 0) + 1 for i in range(1, result.n + 1)]
    result.objects_per_tenant = sum(counts) / len(counts)
    result.objects_min, result.objects_max = min(counts), max(counts)
    return counts


def classify_provisioning(records: list[RequestRecord], names: list[str], objects: list[int], result: Result) -> None:
    per_tenant: collections.Counter[str] = collections.Counter()
    object_writes: collections.Counter[str] = collections.Counter()
    status_per_tenant: collections.Counter[str] = collections.Counter()
    other: collections.Counter[str] = collections.Counter()
    for field in ("provisioning_reads", "failed_writes", "writes", "noop_writes", "status_patches", "tenant_patches"):
        setattr(result, field, 0)
    result.object_writes = result.other_writes = 0
    result.provisioning_reconciles = 0
    for record in records:
        if not record.is_write:
            result.provisioning_reads += 1
            result.provisioning_reconciles += record.method == "GET" and bool(NAMESPACE_READ.match(record.path))
            continue
        if record.status >= 400:
            result.failed_writes += 1
            continue
        result.writes += 1
        result.noop_writes += not record.changed
        if match := STATUS_PATH.search(record.path):
            result.status_patches += 1
            status_per_tenant[match.group(1)] += 1
        elif match := TENANT_PATH.search(record.path):
            result.tenant_patches += 1
        elif match := OBJECT_PATH.search(record.path):
            result.object_writes += 1
            object_writes[match.group(1)] += 1
        else:
            result.other_writes += 1
            other[f"{record.method} {re.sub(TENANT_RE, '<t>', record.path)}"] += 1
            continue
        per_tenant[match.group(1)] += 1
    result.tenants_over_bound = sum(per_tenant[name] > objects[i] + STATUS_PATCH_BUDGET for i, name in enumerate(names))
    result.tenants_over_status_budget = sum(
        object_writes[name] != objects[i] or status_per_tenant[name] > STATUS_PATCH_BUDGET
        for i, name in enumerate(names)
    )
    result.max_status_patches = max((status_per_tenant[name] for name in names), default=0)
    result.other_write_paths = [f"{count}x {path}" for path, count in other.most_common(5)]


def idle(
    kube: KubeEmulator, operator: Operator, names: list[str], mark: int, result: Result, args: argparse.Namespace
) -> None:
    """Wait >= one resync interval and until every tenant was re-read; then count writes (must be 0)."""
    n = len(names)
    deadline_s = 2 * args.resync + provisioning_deadline(n, args)
    log(f"N={n}: idle phase: >= {args.resync:g} s and until all {n} tenants were re-read (deadline {deadline_s:g} s)")
    cpu0, t0 = operator.cpu(), time.monotonic()
    while True:
        reconciles, reread = reads_since(kube, mark)
        elapsed = time.monotonic() - t0
        if elapsed >= args.resync and len(reread) == n:
            time.sleep(SETTLE_SECONDS)  # the reconciles that just read finish (and must not write)
            break
        if elapsed > deadline_s or not operator.alive():
            result.notes.append(f"idle: only {len(reread)}/{n} tenants re-read in {elapsed:.0f} s")
            break
        time.sleep(1.0)
    result.idle_seconds = time.monotonic() - t0
    reconciles, reread = reads_since(kube, mark)
    everything = kube.request_log()
    late, records = split_late_writes(everything[mark:])
    if late:
        result.late_writes = sum(r.status < 400 for r in late)
        classify_provisioning(everything[:mark] + late, names, result.objects, result)
    result.idle_tenants_read = len(reread)
    result.idle_reconciles = sum(reconciles.values())
    writes = [r for r in records if r.is_write]
    result.idle_writes = sum(r.status < 400 for r in writes)
    result.idle_failed_writes = sum(r.status >= 400 for r in writes)
    result.idle_reads = sum(not r.is_write for r in records)
    if result.idle_writes:
        paths = collections.Counter(f"{r.method} {re.sub(TENANT_RE, '<t>', r.path)}" for r in writes)
        noop = sum(r.status < 400 and not r.changed for r in writes)
        tenants = {m.group(1) for r in writes if (m := STATUS_PATH.search(r.path) or OBJECT_PATH.search(r.path))}
        result.notes.append(
            "idle writes: "
            + ", ".join(f"{c}x {p}" for p, c in paths.most_common(5))
            + f"; {noop} of them changed nothing on the server; {len(tenants)} tenants wrote"
        )
    result.operator_idle_cpu_s = operator.cpu() - cpu0
    result.rss_after_idle_mb = memory_mb(operator.pid)[0]
    kube.reset_counts()


def split_late_writes(records: list[RequestRecord]) -> tuple[list[RequestRecord], list[RequestRecord]]:
    """Split off the writes a tenant's reconcile makes before it first reads the namespace again.

    A tenant's reconciles are serialised and each starts by reading its namespace, so a write for a
    tenant before that read comes from a reconcile that began before the mark: it belongs to
    provisioning (typically a status patch decided on a stale view), not to an idle resync.
    """
    started: set[str] = set()
    late: list[RequestRecord] = []
    rest: list[RequestRecord] = []
    for record in records:
        if record.method == "GET" and (match := NAMESPACE_READ.match(record.path)):
            started.add(match.group(1))
        elif record.is_write:
            match = (
                STATUS_PATH.search(record.path) or TENANT_PATH.search(record.path) or OBJECT_PATH.search(record.path)
            )
            if match and match.group(1) not in started:
                late.append(record)
                continue
        rest.append(record)
    return late, rest


def reads_since(kube: KubeEmulator, mark: int) -> tuple[collections.Counter[str], set[str]]:
    """(namespace reads per tenant = reconciles started, tenants whose observe pass completed)."""
    started: collections.Counter[str] = collections.Counter()
    completed: set[str] = set()
    for record in kube.request_log()[mark:]:
        if record.method != "GET":
            continue
        if match := NAMESPACE_READ.match(record.path):
            started[match.group(1)] += 1
        elif match := SECRETS_READ.match(record.path):
            completed.add(match.group(1))  # the Secrets list is the last read of observe_tenant()
    return started, completed & set(started)


# ---- reporting ---------------------------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace) -> bool:
    base = results[0]
    base_per_tenant = base.seconds_to_ready / base.n if base.seconds_to_ready else None
    rows = []
    for r in results:
        per_tenant = r.seconds_to_ready / r.n if r.seconds_to_ready else None
        ratio = per_tenant / base_per_tenant if per_tenant and base_per_tenant else None
        ready = fmt(r.seconds_to_ready) if not r.timed_out else f"timeout ({r.ready}/{r.n})"
        rows.append(
            [
                f"{r.n}{' (baseline)' if r is base else ''}",
                ready,
                fmt(ratio, ".2f"),
                fmt(r.writes_per_tenant if r.objects else None, ".2f"),
                fmt(r.target_per_tenant if r.objects else None, ".2f"),
                "-" if r.idle_writes is None else str(r.idle_writes),
                f"{r.rss_mb:.0f} (peak {r.hwm_mb:.0f})",
                fmt(r.operator_cpu_s),
            ]
        )
    header = [
        "N",
        "all Ready (s)",
        "s/tenant vs baseline",
        "writes/tenant",
        "target (objects+3)",
        "idle writes",
        "RSS MB",
        "operator CPU s",
    ]
    print(
        f"\nOperator scale (resync {args.resync:g} s, retry {args.retry:g} s, kubelet {args.kubelet}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]})\noperator code: {args.code}\n"
    )
    print(table(rows, header))

    writes = [
        [
            str(r.n),
            f"{r.objects_per_tenant:.1f}",
            f"{r.object_writes / r.n:.2f}",
            f"{r.status_patches / r.n:.2f} (max {r.max_status_patches})",
            f"{r.tenant_patches / r.n:.2f}",
            str(r.other_writes),
            f"{r.failed_writes}/{r.noop_writes}",
            f"{r.tenants_over_bound}/{r.tenants_over_status_budget}",
            f"{r.provisioning_reconciles / r.n:.1f}",
            f"{r.provisioning_reads / r.n:.0f}",
        ]
        for r in results
        if r.objects  # an interrupted run may not have counted them
    ]
    print("\nWrites while provisioning (per tenant unless noted):\n")
    print(
        table(
            writes,
            [
                "N",
                "objects",
                "object writes",
                "status patches",
                "finalizer patches",
                "other (total)",
                "failed/no-op (total)",
                "tenants over: strict/excl. finalizer",
                "reconciles",
                "reads",
            ],
        )
    )
    resources = []
    for r in results:
        per_reconcile = r.idle_reads / r.idle_reconciles if r.idle_reconciles else None
        cpu_ms = (
            1000 * r.operator_idle_cpu_s / r.idle_reconciles if r.idle_reconciles and r.operator_idle_cpu_s else None
        )
        resources.append(
            [
                str(r.n),
                f"{fmt(r.ready_p50)}/{fmt(r.ready_p90)}",
                f"{r.operator_start_s:.1f}",
                f"{r.bench_cpu_s:.1f} ({r.emulator_cpu_s:.1f}/{r.kubelet_cpu_s:.1f})",
                f"{r.others_cpu_s:.1f}",
                str(r.kubelet_writes),
                fmt(r.idle_seconds, ".0f"),
                f"{r.idle_tenants_read}/{r.n}, {r.idle_reconciles}",
                fmt(per_reconcile),
                f"{fmt(r.operator_idle_cpu_s)} ({fmt(cpu_ms, '.0f')})",
                fmt(r.rss_after_idle_mb, ".0f"),
                f"{r.bench_rss_mb:.0f}",
            ]
        )
    print("\nTime, CPU and the idle phase:\n")
    print(
        table(
            resources,
            [
                "N",
                "Ready p50/p90 s",
                "operator start s",
                "bench CPU s (emulator/kubelet threads)",
                "other procs CPU s",
                "kubelet writes",
                "idle s",
                "re-read tenants, reconciles",
                "reads/reconcile",
                "operator idle CPU s (ms/reconcile)",
                "RSS after idle MB",
                "bench RSS MB",
            ],
        )
    )
    for r in results:
        for note in r.notes:
            print(f"note N={r.n}: {note}")
        if r.ready < r.n:
            print(f"note N={r.n}: phases at the deadline: {r.phases}")
        if r.quiet_after_s is not None:
            capped = " (cap reached: still writing)" if r.quiet_after_s >= QUIET_MAX_SECONDS else ""
            print(
                f"note N={r.n}: writes stopped {max(0.0, r.quiet_after_s - QUIET_SECONDS):.1f} s after all were "
                f"Ready{capped}; those count as provisioning"
            )
        if r.late_writes:
            print(
                f"note N={r.n}: {r.late_writes} writes landed after all were Ready, from reconciles that began "
                "before; counted as provisioning writes"
            )
        if r.other_write_paths:
            print(f"note N={r.n}: other writes: {'; '.join(r.other_write_paths)}")
        print(f"note N={r.n}: operator log lines by level: {r.log_levels}")
        for problem in r.log_problems:
            print(f"note N={r.n}: operator log: {problem}")
        for name, views in r.profile.items():
            for view, rows_ in views.items():
                print(f"\npy-spy {name} while provisioning, % of samples by {view}:")
                for share, function in rows_:
                    print(f"  {share:5.1f}  {function}")
    return verdicts(results)


def verdicts(results: list[Result]) -> bool:
    """One PASS/FAIL line per DESIGN.md §7 operator target (N/A when the run did not measure it)."""
    print()
    ok = True

    def line(passed: bool | None, text: str) -> None:
        nonlocal ok
        ok = ok and passed is not False
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'N/A '}  {text}")

    idle = [r for r in results if r.idle_writes is not None]
    line(
        all(r.idle_writes == 0 and r.idle_tenants_read == r.n for r in idle) if idle else None,
        "a reconcile with nothing to change makes 0 writes: "
        + ", ".join(f"N={r.n}: {r.idle_writes} writes, {r.idle_tenants_read}/{r.n} re-read" for r in idle),
    )
    done = [r for r in results if not r.timed_out and r.ready == r.n]
    line(
        all(r.tenants_over_bound == 0 for r in done) if done else None,
        "provisioning writes <= objects + 3 per tenant, every write counted: "
        + ", ".join(
            f"N={r.n}: {r.writes_per_tenant:.2f} vs {r.target_per_tenant:.2f}, {r.tenants_over_bound} over"
            for r in done
        ),
    )
    line(
        all(r.tenants_over_status_budget == 0 for r in done) if done else None,
        "... with kopf's finalizer patch apart (each object once, <= 3 status patches): "
        + ", ".join(
            f"N={r.n}: max {r.max_status_patches} status patches, {r.tenants_over_status_budget} over" for r in done
        ),
    )
    big = [r for r in results if r.n >= RSS_TARGET_N]
    peaks = [max(r.hwm_mb, r.rss_after_idle_mb or 0) for r in big]
    rss_ok: bool | None = None  # under the target but not all Ready: not a full measurement
    if any(peak >= RSS_TARGET_MB for peak in peaks):
        rss_ok = False
    elif big and all(r.ready == r.n for r in big):
        rss_ok = True
    line(
        rss_ok,
        f"RSS < {RSS_TARGET_MB:g} MB at {RSS_TARGET_N} tenants: "
        + (
            ", ".join(f"N={r.n}: {r.rss_mb:.0f} MB (peak {r.hwm_mb:.0f}), {r.ready} Ready" for r in big)
            or "not measured"
        ),
    )
    target = [r for r in results if r.n == READY_TARGET_N]
    line(
        all(r.seconds_to_ready is not None and r.seconds_to_ready <= READY_TARGET_S for r in target)
        if target
        else None,
        f"{READY_TARGET_N} tenants created at once all Ready within {READY_TARGET_S:g} s ({os.cpu_count()} CPUs): "
        + (
            ", ".join(fmt(r.seconds_to_ready) + " s" if r.seconds_to_ready else "timeout" for r in target)
            or "not measured"
        ),
    )
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="50,200,1000", help="comma-separated N (default 50,200,1000)")
    parser.add_argument("--baseline", type=int, default=50, help="baseline N, always measured first (default 50)")
    parser.add_argument("--resync", type=float, default=30.0, help="SOA_OPERATOR_RESYNC_SECONDS (default 30)")
    parser.add_argument("--retry", type=float, default=5.0, help="SOA_OPERATOR_RETRY_SECONDS (default 5, production)")
    parser.add_argument("--deadline-base", type=float, default=60.0, help="provisioning deadline: base seconds")
    parser.add_argument(
        "--deadline-per-tenant", type=float, default=0.5, help="... plus seconds per tenant (1,000: 560 s)"
    )
    parser.add_argument(
        "--kubelet",
        choices=("scoped", "auto"),
        default="scoped",
        help="emulated readiness: per written namespace (default) or FakeKubelet.auto (whole cluster per change)",
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy both processes; collapsed stacks here")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second (default 50)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep the operator logs in this directory")
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.tenants.split(",") if part.strip()]
    args.sizes = [args.baseline, *(n for n in sizes if n != args.baseline)]
    return args


def code_state() -> str:
    """The operator code measured: commit, plus the files changed in the working tree (it is shared)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "operator", "charts"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown (no git)"
    changed = sorted(line[3:] for line in dirty.stdout.splitlines() if line.strip())
    return head.stdout.strip() + (f" + uncommitted changes to {', '.join(changed)}" if changed else " (clean)")


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="soa-bench-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the operator
    results: list[Result] = []
    args.code = code_state()
    log(f"sizes {args.sizes}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; code {args.code}")
    with workdir(args.keep_logs) as tmp:
        for n in args.sizes:
            results.append(Result(n=n))
            try:
                run_one(results[-1], args, tmp)
            except (KeyboardInterrupt, SystemExit) as exc:  # report what was measured, then stop
                results[-1].timed_out = True
                results[-1].notes.append(f"interrupted ({type(exc).__name__}): {results[-1].ready}/{n} Ready")
                log(f"N={n}: interrupted; reporting what was measured")
                break
    if code_state() != args.code:
        args.code += f" -- CHANGED DURING THE RUN to {code_state()}"
    ok = report(results, args)
    if args.json:
        runs = [dataclasses.asdict(r) | {"writes_per_tenant": r.writes_per_tenant} for r in results]
        settings = {"resync": args.resync, "retry": args.retry, "kubelet": args.kubelet, "code": args.code}
        args.json.write_text(json.dumps({"settings": settings, "cpus": os.cpu_count(), "runs": runs}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
