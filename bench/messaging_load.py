"""Messaging load benchmark: supported concurrent users, Mattermost's way (mattermost-load-test-ng).

Everything runs on this machine: PostgreSQL and Redis (tests/support/servers.py), `soa migrate`, the real
`soa api` and `soa worker --concurrency 1` as subprocesses, and the load generator (this process: one
asyncio loop on uvloop). Users, channels, direct conversations and 60 messages per conversation are written
straight into the database first, and every user gets a token from the platform's TokenService (no login
storm). See bench/messaging_users.py for what a simulated user does: Mattermost's action mix (switch channel
6.5, scroll 2, post 1, unread check 1, reconnect 0.14) and pacing (20 s between a user's actions on average,
at least 1 s).

The feedback loop is Mattermost's coordinator, compressed in time: every --step-seconds the thresholds are
checked over the requests that finished in that tick (client-side: mean < 100 ms, p99 < 2 s, errors
< 0.025 %). While they hold, --step users are added; when one breaks, users are removed. After the first
alert, each change of direction halves the step (down to --min-step), and the run ends when the number of
users over the last --settle ticks has a least-squares slope under 0.1 users/s (Mattermost's stopThreshold):
the supported number of users is their average. It also ends at --max-users held for --hold ticks without an
alert (the answer is then ">= max"), at --duration (the answer is the average of the last --settle ticks,
marked as not converged), or on SIGTERM/Ctrl-C (a report of what was measured).

The first tick runs --baseline-users and is the baseline measured in the same run: every tick's mean
request latency is shown as a ratio to it, next to the bare /healthz latency (probed twice a second all run
long), the generator's own event-loop lag, send-to-deliver latency, and the CPU of each process group.

Usage: .venv/bin/python bench/messaging_load.py [--quick] [--max-users 4000] [--step 200] [--step-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench_report import Profiler, fmt, log, table, workdir  # noqa: E402
from messaging_procs import CPU_GROUPS, CpuMeter, Stack, rss_mb, summarize_profile  # noqa: E402
from messaging_seed import Seeded, seed  # noqa: E402
from messaging_users import LABELS, Population, Window  # noqa: E402
from soa_platform.settings import PlatformSettings  # noqa: E402

TARGET_USERS = 2000  # DESIGN.md §7
MATTERMOST_SMALLEST = 217  # one 2-vCPU app node + one 2-vCPU database
MEAN_LIMIT_MS = 100.0  # Mattermost's thresholds
P99_LIMIT_MS = 2000.0
ERROR_LIMIT_PCT = 0.025
DELIVER_P99_TARGET_MS = 100.0  # DESIGN.md §7, at the target load
STOP_SLOPE = 0.1  # users per second: Mattermost's coordinator stopThreshold
OTHERS_BUSY_PCT = 25.0  # other sessions share the machine: ticks where they took more are marked


# ---- one tick's figures --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(value: float | None) -> float | None:
    return None if value is None else 1000 * value


@dataclasses.dataclass
class Tick:
    index: int
    phase: str  # baseline | load
    users: int
    seconds: float
    requests: int = 0
    errors: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    endpoints: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    error_kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    actions: dict[str, int] = dataclasses.field(default_factory=dict)
    posts: int = 0
    deliveries: int = 0
    missed: int = 0
    deliver_p50_ms: float | None = None
    deliver_p99_ms: float | None = None
    healthz_p50_ms: float | None = None
    healthz_p99_ms: float | None = None
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    cpu_pct: dict[str, float] = dataclasses.field(default_factory=dict)
    api_rss_mb: float = 0.0  # all api processes that serve requests, at the end of the tick
    alerts: list[str] = dataclasses.field(default_factory=list)
    next_action: str = ""
    raw_latencies: list[float] = dataclasses.field(default_factory=list, repr=False)
    raw_deliveries: list[float] = dataclasses.field(default_factory=list, repr=False)
    raw_by_label: dict[str, list[float]] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_pct(self) -> float:
        return 100 * self.errors / self.requests if self.requests else 0.0


def summarize(index: int, phase: str, users: int, window: Window, cpu: dict[str, float]) -> Tick:
    latencies = [v for values in window.latencies.values() for v in values]
    tick = Tick(index=index, phase=phase, users=users, seconds=window.seconds)
    tick.requests, tick.errors = window.requests, window.error_count
    tick.mean_ms = ms(statistics.fmean(latencies)) if latencies else None
    tick.p50_ms, tick.p99_ms = ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99))
    for label, values in sorted(window.latencies.items()):
        tick.endpoints[label] = {
            "count": len(values),
            "mean_ms": ms(statistics.fmean(values)),
            "p50_ms": ms(percentile(values, 0.5)),
            "p99_ms": ms(percentile(values, 0.99)),
        }
    tick.error_kinds = dict(window.errors.most_common())
    tick.actions = dict(window.actions)
    tick.posts, tick.missed, tick.deliveries = window.posts, window.missed, len(window.deliveries)
    tick.deliver_p50_ms, tick.deliver_p99_ms = (
        ms(percentile(window.deliveries, 0.5)),
        ms(percentile(window.deliveries, 0.99)),
    )
    tick.healthz_p50_ms, tick.healthz_p99_ms = ms(percentile(window.healthz, 0.5)), ms(percentile(window.healthz, 0.99))
    tick.lag_p99_ms, tick.lag_max_ms = ms(percentile(window.lag, 0.99)), ms(max(window.lag, default=0.0))
    tick.cpu_pct = {name: 100 * seconds / window.seconds for name, seconds in cpu.items()} if window.seconds else {}
    tick.raw_latencies, tick.raw_deliveries = latencies, list(window.deliveries)
    tick.raw_by_label = {label: list(values) for label, values in window.latencies.items()}
    if tick.requests and tick.mean_ms is not None and tick.mean_ms >= MEAN_LIMIT_MS:
        tick.alerts.append(f"mean {tick.mean_ms:.0f} ms")
    if tick.p99_ms is not None and tick.p99_ms >= P99_LIMIT_MS:
        tick.alerts.append(f"p99 {tick.p99_ms:.0f} ms")
    if tick.requests and tick.error_pct >= ERROR_LIMIT_PCT:
        tick.alerts.append(f"errors {tick.error_pct:.3f} %")
    return tick


# ---- the feedback loop ---------------------------------------------------------------------------------


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of users over seconds (Mattermost's coordinator: math.go)."""
    n = len(points)
    xs = [x - points[0][0] for x, _ in points]
    ys = [float(y) for _, y in points]
    sxx = n * sum(x * x for x in xs) - sum(xs) ** 2
    return (n * sum(x * y for x, y in zip(xs, ys, strict=True)) - sum(xs) * sum(ys)) / sxx if sxx else 0.0


@dataclasses.dataclass
class Outcome:
    ticks: list[Tick] = dataclasses.field(default_factory=list)
    supported: int | None = None
    bounded: bool = False  # max users held without an alert: the answer is ">= supported"
    converged: bool = False
    stop_reason: str = ""
    equilibrium: list[int] = dataclasses.field(default_factory=list)  # indexes of the ticks it rests on
    highest_passing: int = 0
    profile: dict[str, dict[str, list[tuple[float, str]]]] = dataclasses.field(default_factory=dict)
    database: dict[str, Any] = dataclasses.field(default_factory=dict)
    requests_total: int = 0  # API requests (WebSocket connects included) while the database stats ran
    notes: list[str] = dataclasses.field(default_factory=list)


class Controller:
    def __init__(self, args: argparse.Namespace, population: Population, meter: CpuMeter, outcome: Outcome) -> None:
        self.args = args
        self.pop = population
        self.meter = meter
        self.outcome = outcome
        self.stop = asyncio.Event()
        self.started = time.monotonic()
        self.api_pids: list[int] = []

    async def measure(self, phase: str) -> Tick | None:
        """Wait one tick (or until asked to stop); its figures, or None if interrupted before the end."""
        users = self.pop.active
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), self.args.step_seconds)
        if self.stop.is_set():
            return None
        self.pop.expire_pending()
        tick = summarize(len(self.outcome.ticks), phase, users, self.pop.recorder.rotate(), self.meter.lap())
        tick.api_rss_mb = sum(rss_mb(pid) for pid in self.api_pids)
        self.outcome.ticks.append(tick)
        return tick

    async def run(self) -> None:
        args, outcome = self.args, self.outcome
        ramp = min(args.ramp_seconds, args.step_seconds) if args.ramp_seconds else args.step_seconds
        await self.pop.resize(args.baseline_users, min(ramp, args.warmup / 2))
        log(f"warm-up: {args.baseline_users} users for {args.warmup:g} s (not measured)")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), args.warmup)
        self.pop.expire_pending()
        self.pop.recorder.rotate()
        self.meter.lap()
        log(f"baseline: {args.baseline_users} users for {args.step_seconds:g} s")
        tick = await self.measure("baseline")
        if tick is None:
            outcome.stop_reason = "interrupted during the baseline"
            return
        self.progress(tick)
        step, direction, alerted = args.step, +1, False
        samples: list[tuple[float, int]] = []
        held = 0
        users = max(args.step, args.baseline_users + args.step) if not tick.alerts else args.baseline_users
        if tick.alerts:
            outcome.notes.append("the baseline itself broke a threshold: " + ", ".join(tick.alerts))
        while True:
            users = max(1, min(users, args.max_users))
            tick.next_action = f"{users - self.pop.active:+d}" if users != self.pop.active else "hold"
            await self.pop.resize(users, ramp)
            measured = await self.measure("load")
            if measured is None:
                outcome.stop_reason = "interrupted"
                break
            tick = measured
            if not tick.alerts:
                outcome.highest_passing = max(outcome.highest_passing, tick.users)
            if alerted or tick.alerts:
                alerted = True
                samples.append((time.monotonic() - self.started, tick.users))
            if tick.alerts:  # each change of direction halves the step: a bisection around the limit
                if direction > 0:
                    step, direction = max(args.min_step, step // 2), -1
                users = tick.users - step
            else:
                if direction < 0:
                    step, direction = max(args.min_step, step // 2), +1
                if tick.users >= args.max_users:
                    held += 1
                users = tick.users + step
            self.progress(tick)
            latest = samples[-args.settle :]
            if len(samples) > args.settle and abs(slope(latest)) < STOP_SLOPE:
                outcome.supported = round(statistics.fmean(u for _, u in latest))
                outcome.converged = True
                outcome.equilibrium = [t.index for t in outcome.ticks[-args.settle :]]
                outcome.stop_reason = (
                    f"equilibrium: slope {slope(latest):+.3f} users/s over the last {args.settle} ticks"
                )
                break
            if held >= args.hold:
                outcome.supported, outcome.bounded = args.max_users, True
                outcome.equilibrium = [t.index for t in outcome.ticks[-held:]]
                outcome.stop_reason = f"--max-users {args.max_users} held for {held} ticks without an alert"
                break
            if time.monotonic() - self.started >= args.duration:
                outcome.stop_reason = f"--duration {args.duration:g} s reached before an equilibrium"
                break
        tick.next_action = "stop"
        if outcome.supported is None:
            self.fallback_answer(samples)

    def fallback_answer(self, samples: list[tuple[float, int]]) -> None:
        """No equilibrium: the average of the last --settle ticks since the first alert, or the highest level that
        held if no tick broke a threshold."""
        outcome = self.outcome
        load = [t for t in outcome.ticks if t.phase == "load"]
        if samples:
            latest = samples[-self.args.settle :]
            outcome.supported = round(statistics.fmean(u for _, u in latest))
            outcome.equilibrium = [t.index for t in load[-len(latest) :]]
        elif load:
            outcome.supported, outcome.bounded = outcome.highest_passing, True
            best = max((t for t in load if not t.alerts), key=lambda t: t.users, default=None)
            outcome.equilibrium = [best.index] if best else []

    def progress(self, tick: Tick) -> None:
        cpu = " ".join(f"{name} {tick.cpu_pct.get(name, 0):.0f}%" for name in cpu_groups(self.args))
        log(
            f"tick {tick.index} ({tick.phase}): {tick.users} users, {tick.rps:.0f} req/s, "
            f"mean {fmt(tick.mean_ms)} ms, p99 {fmt(tick.p99_ms)} ms, errors {tick.errors}/{tick.requests}, "
            f"deliver p99 {fmt(tick.deliver_p99_ms)} ms, lag p99 {fmt(tick.lag_p99_ms)} ms; CPU {cpu} -> "
            + ("ALERT " + ", ".join(tick.alerts) if tick.alerts else "ok")
        )


# ---- reporting -----------------------------------------------------------------------------------------


def cpu_groups(args: argparse.Namespace) -> list[str]:
    return [name for name in CPU_GROUPS if name != "py-spy" or args.profile] + ["others"]


def ratio(value: float | None, base: float | None) -> str:
    return fmt(value / base, ".2f") if value is not None and base else "-"


def pooled(ticks: list[Tick], attribute: str) -> list[float]:
    return [v for t in ticks for v in getattr(t, attribute)]


def report(outcome: Outcome, args: argparse.Namespace, seeded: Seeded | None) -> bool:
    ticks = outcome.ticks
    print(
        f"\nMessaging load ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, api workers {args.api_workers}, "
        f"think {args.think_mean:g} s mean / {args.think_min:g} s min, step {args.step} per {args.step_seconds:g} s)"
        f"\ncode: {args.code}" + (f"\napi environment added: {' '.join(args.api_env)}" if args.api_env else "")
    )
    if seeded is not None:
        print(
            f"data: {len(seeded.accounts)} users, {seeded.channels} channels, {seeded.directs} direct conversations, "
            f"{seeded.messages} messages (seeded in {seeded.seconds:.1f} s)"
        )
    if not ticks:
        print("\nno tick was measured")
        return False
    base = ticks[0]
    rows = []
    for t in ticks:
        mark = "*" if t.index in outcome.equilibrium else ""
        rows.append(
            [
                f"{t.index}{' (baseline)' if t.phase == 'baseline' else ''}{mark}",
                str(t.users),
                f"{t.users / TARGET_USERS:.2f}",
                f"{t.rps:.0f}",
                fmt(t.mean_ms),
                ratio(t.mean_ms, base.mean_ms),
                fmt(t.p99_ms, ".0f"),
                f"{t.errors} ({t.error_pct:.3f}%)",
                f"{fmt(t.healthz_p50_ms)}/{fmt(t.healthz_p99_ms)}",
                fmt(t.lag_p99_ms),
                f"{fmt(t.deliver_p50_ms)}/{fmt(t.deliver_p99_ms)}",
                f"{t.deliveries}/{t.missed}",
                ("ALERT: " + ", ".join(t.alerts)) if t.alerts else "ok",
                t.next_action,
            ]
        )
    header = [
        "tick",
        "users",
        f"vs {TARGET_USERS}",
        "req/s",
        "mean ms",
        "mean vs baseline",
        "p99 ms",
        "errors",
        "/healthz p50/p99 ms",
        "gen. lag p99 ms",
        "send→deliver p50/p99 ms",
        "deliveries/missed",
        "thresholds",
        "next",
    ]
    print(
        f"\nTicks of {args.step_seconds:g} s (thresholds: mean < {MEAN_LIMIT_MS:g} ms, p99 < {P99_LIMIT_MS:g} ms, "
        f"errors < {ERROR_LIMIT_PCT} %; * = the ticks the answer rests on):\n"
    )
    print(table(rows, header))
    cpu_rows = []
    for t in ticks:
        total = sum(t.cpu_pct.values())
        cells = [fmt(t.cpu_pct.get(name), ".0f") for name in cpu_groups(args)]
        per_request = 10 * t.cpu_pct.get("api", 0.0) * t.seconds / t.requests if t.requests else None
        cpu_rows.append([str(t.index), str(t.users), *cells, f"{total:.0f}", fmt(per_request), f"{t.api_rss_mb:.0f}"])
    print("\nCPU by process group, % of one core (200 % = the whole machine):\n")
    print(table(cpu_rows, ["tick", "users", *cpu_groups(args), "total", "api CPU ms/request", "api RSS MB"]))
    busy = [str(t.index) for t in ticks if t.cpu_pct.get("others", 0.0) > OTHERS_BUSY_PCT]
    if busy:
        print(
            f"other processes took more than {OTHERS_BUSY_PCT:g} % of a core in ticks {', '.join(busy)}: "
            "their latencies are not this stack's alone"
        )

    eq = [t for t in ticks if t.index in outcome.equilibrium]
    endpoint_rows = []
    for label in LABELS:
        b = base.raw_by_label.get(label, [])
        e = [v for t in eq for v in t.raw_by_label.get(label, [])]
        b_mean = ms(statistics.fmean(b)) if b else None
        e_mean = ms(statistics.fmean(e)) if e else None
        endpoint_rows.append(
            [
                label,
                str(len(b)),
                fmt(b_mean),
                fmt(ms(percentile(b, 0.99))),
                str(len(e)),
                fmt(e_mean),
                fmt(ms(percentile(e, 0.5))),
                fmt(ms(percentile(e, 0.99))),
                ratio(e_mean, b_mean),
            ]
        )
    eq_users = f"{min(t.users for t in eq)}-{max(t.users for t in eq)} users" if eq else "none"
    print(f"\nRequests by endpoint: baseline ({base.users} users) vs the answer's ticks ({eq_users}):\n")
    print(
        table(
            endpoint_rows,
            ["request", "baseline n", "mean ms", "p99 ms", "at answer n", "mean ms", "p50 ms", "p99 ms", "mean ratio"],
        )
    )

    deliveries = pooled(eq, "raw_deliveries")
    d50, d99 = ms(percentile(deliveries, 0.5)), ms(percentile(deliveries, 0.99))
    at_target = [t for t in ticks if t.phase == "load" and t.users >= TARGET_USERS and not t.alerts]
    target_deliveries = pooled(at_target, "raw_deliveries")
    t99 = ms(percentile(target_deliveries, 0.99))
    errors: dict[str, int] = {}
    for t in ticks:
        for kind, n in t.error_kinds.items():
            errors[kind] = errors.get(kind, 0) + n
    supported = outcome.supported
    print()
    print(f"stopped: {outcome.stop_reason}")
    if supported is not None:
        prefix = ">= " if outcome.bounded else ""
        status = "converged" if outcome.converged else "bounded" if outcome.bounded else "NOT converged"
        print(
            f"supported concurrent users: {prefix}{supported} ({status}); vs target {TARGET_USERS}: "
            f"{supported / TARGET_USERS:.2f}; vs Mattermost's smallest reference ({MATTERMOST_SMALLEST}): "
            f"{supported / MATTERMOST_SMALLEST:.1f}x; highest level that held a whole tick: {outcome.highest_passing}"
        )
    print(
        f"send→deliver at the answer: p50 {fmt(d50)} ms, p99 {fmt(d99)} ms over {len(deliveries)} deliveries; "
        f"missed {sum(t.missed for t in eq)}; at >= {TARGET_USERS} users (passing ticks): p99 {fmt(t99)} ms "
        f"over {len(target_deliveries)}"
    )
    if errors:
        print("errors by kind: " + "; ".join(f"{n}x {kind}" for kind, n in sorted(errors.items(), key=lambda i: -i[1])))
    actions: dict[str, int] = {}
    for t in ticks:
        for name, n in t.actions.items():
            actions[name] = actions.get(name, 0) + n
    if actions:
        total = sum(actions.values())
        print("action mix done: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in sorted(actions.items())))
    print_database(outcome)
    for note in outcome.notes:
        print(f"note: {note}")
    for name, views in outcome.profile.items():
        for view, rows_ in views.items():
            print(f"\npy-spy {name}, % of CPU samples by {view}:")
            for share, function in rows_:
                print(f"  {share:5.1f}  {function}")
    print()
    ok = True

    def verdict(passed: bool | None, text: str) -> None:
        nonlocal ok
        ok = ok and passed is not False
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'N/A '}  {text}")

    verdict(
        None if supported is None else supported >= TARGET_USERS,
        f">= {TARGET_USERS} concurrent users within Mattermost's thresholds: {fmt(supported, '.0f')}",
    )
    verdict(
        None if t99 is None else t99 < DELIVER_P99_TARGET_MS,
        f"send→deliver p99 < {DELIVER_P99_TARGET_MS:g} ms at >= {TARGET_USERS} users: {fmt(t99)} ms",
    )
    return ok


def print_database(outcome: Outcome) -> None:
    db, requests = outcome.database, outcome.requests_total
    if not db or not requests:
        return
    print(
        f"\nPostgreSQL while the load ran (warm-up included): {db['statements']} statements for {requests} API "
        f"requests = {db['statements'] / requests:.1f} per request (BEGIN/COMMIT and pool pre-pings included), "
        f"{db['commits'] / requests:.2f} commits per request, {db['statement_ms'] / 1000:.1f} s of statement time; "
        "the costliest statements:\n"
    )

    def rows(statements: list[dict[str, Any]]) -> list[list[str]]:
        width = max((len(s["query"][:110]) for s in statements), default=0)
        return [
            [
                f"{s['calls'] / requests:.2f}",
                f"{s['mean_ms']:.3f}",
                f"{s['total_ms'] / 1000:.1f}",
                f"{s['rows'] / s['calls']:.1f}" if s["calls"] else "-",
                s["query"][:110].ljust(width),  # left-aligned: BEGIN, COMMIT... stay readable
            ]
            for s in statements
        ]

    header = ["per request", "mean ms", "total s", "rows/call", "statement"]
    print(table(rows(db["top"][:12]), header))
    print("\nthe most frequent statements:\n")
    print(table(rows(sorted(db["top"], key=lambda s: -s["calls"])[:14]), header))
    scans = [t for t in db["tables"] if t["seq_scan"]]
    if scans:
        print(
            "sequential scans: "
            + "; ".join(
                f"{t['table']} {t['seq_scan']}x ({t['seq_tup_read']} rows read, {t['idx_scan']} index scans)"
                for t in scans
            )
        )


# ---- setup ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~1-minute smoke run: few users, fast pacing")
    parser.add_argument("--max-users", type=int, default=4000, help="users seeded and the most ever active")
    parser.add_argument("--baseline-users", type=int, default=50, help="users of the baseline tick (the first)")
    parser.add_argument("--step", type=int, default=200, help="users added per tick while the thresholds hold")
    parser.add_argument("--min-step", type=int, default=25, help="the step never shrinks below this")
    parser.add_argument("--step-seconds", type=float, default=30.0, help="tick length: thresholds checked per tick")
    parser.add_argument(
        "--ramp-seconds",
        type=float,
        default=None,
        help="a step's new users connect spread over this (default: the whole tick, a steady ramp)",
    )
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds the baseline users run before it")
    parser.add_argument("--settle", type=int, default=8, help="ticks whose user-count slope decides equilibrium")
    parser.add_argument("--hold", type=int, default=3, help="ticks at --max-users without alert to stop (bounded)")
    parser.add_argument("--duration", type=float, default=900.0, help="most seconds of load (after setup)")
    parser.add_argument("--think-mean", type=float, default=20.0, help="mean seconds between a user's actions")
    parser.add_argument("--think-min", type=float, default=1.0, help="least seconds between a user's actions")
    parser.add_argument("--mention-share", type=float, default=0.1, help="share of posts that mention a member")
    parser.add_argument("--channels-per-user", type=float, default=4.0, help="public channels per user (20-50 big)")
    parser.add_argument("--messages", type=int, default=60, help="messages seeded in every conversation")
    parser.add_argument(
        "--api-workers",
        type=int,
        default=2,
        help="`soa api --workers N`: api processes (default 2, one per core)",
    )
    parser.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra environment variable for the api only, for experiments (repeatable)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=1, help="soa worker --concurrency")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data and the users")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the api and the generator into DIR")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second (default 50)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep logs and server dirs in this directory")
    args = parser.parse_args(argv)
    if args.quick:
        quick = {"max_users": 60, "baseline_users": 10, "step": 25, "min_step": 10, "step_seconds": 10.0}
        quick |= {"duration": 40.0, "think_mean": 3.0, "think_min": 0.5, "hold": 1, "settle": 3}
        quick |= {"warmup": 5.0}
        for key, value in quick.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    args.baseline_users = min(args.baseline_users, args.max_users)
    return args


def code_state() -> str:
    """The platform code measured: commit, plus the files changed in the working tree (it is shared)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "platform"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown (no git)"
    changed = sorted(line[3:] for line in dirty.stdout.splitlines() if line.strip())
    shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    return head.stdout.strip() + (f" + uncommitted changes to {shown}" if changed else " (clean)")


def raise_file_limit() -> None:
    """Two sockets per user here and as many in the api (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


async def drive(args: argparse.Namespace, stack: Stack, seeded: Seeded, outcome: Outcome) -> None:
    population = Population(
        seeded.accounts,
        seeded.members,
        stack.base_url,
        random.Random(args.seed + 1),
        think_mean=args.think_mean,
        think_min=args.think_min,
        mention_share=args.mention_share,
    )
    await population.open()
    profilers: list[Profiler] = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        targets = [(f"api-{pid}", pid) for pid in stack.api_worker_pids()] + [("generator", os.getpid())]
        # full file names: short ones are ambiguous (OTel's sqlalchemy/engine.py vs SQLAlchemy's)
        profilers = [
            Profiler(pid, args.profile / f"{name}.txt", args.profile_rate, full_filenames=True) for name, pid in targets
        ]
    roots = stack.roots() | {"py-spy": [p.proc.pid for p in profilers]}
    controller = Controller(args, population, CpuMeter(roots), outcome)
    controller.api_pids = stack.api_worker_pids()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        log("interrupted: finishing this tick's report (again to abort)")
        controller.stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)
    stack.reset_database_stats()
    population.recorder.start_counting()
    try:
        await controller.run()
        outcome.requests_total = population.recorder.total
        outcome.database = stack.database_stats()
    finally:
        for profiler in profilers:
            profiler.stop()
        for profiler in profilers:
            outcome.profile[profiler.output.stem] = summarize_profile(profiler.output)
        log(f"stopping {population.active} users")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(population.close(), 60)
        outcome.notes.append(f"generator RSS at the end: {rss_mb(os.getpid()):.0f} MB")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.code = code_state()
    raise_file_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # setup: run the finally blocks, stop the servers
    outcome = Outcome()
    seeded: Seeded | None = None
    log(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; code {args.code}")
    with workdir(args.keep_logs, "soa-msgbench-") as tmp:
        stack = Stack(tmp, api_workers=args.api_workers, worker_concurrency=args.worker_concurrency)
        stack.api_env = dict(item.split("=", 1) for item in args.api_env)
        try:
            started = time.monotonic()
            stack.start_stores()
            stack.migrate()
            log(f"PostgreSQL and Redis up, schema migrated in {time.monotonic() - started:.1f} s; seeding")
            settings = PlatformSettings(**stack.settings_values())
            seeded = uvloop.run(
                seed(
                    settings,
                    args.max_users,
                    channels_per_user=args.channels_per_user,
                    messages=args.messages,
                    rng=random.Random(args.seed),
                )
            )
            log(
                f"seeded {len(seeded.accounts)} users, {seeded.channels} channels, {seeded.directs} direct "
                f"conversations, {seeded.messages} messages in {seeded.seconds:.1f} s; starting api and worker"
            )
            stack.start_api()
            stack.start_worker()
            outcome.notes += stack.notes
            log(f"api on {stack.base_url} (pid {stack.api.pid if stack.api else '-'}); load starts")
            uvloop.run(drive(args, stack, seeded, outcome))
        except (KeyboardInterrupt, SystemExit) as exc:
            outcome.stop_reason = outcome.stop_reason or f"interrupted ({type(exc).__name__})"
        finally:
            outcome.notes += stack.problems()
            stack.close()
    if code_state() != args.code:
        args.code += f" -- CHANGED DURING THE RUN to {code_state()}"
    ok = report(outcome, args, seeded)
    if args.json:
        settings_out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        ticks = [{k: v for k, v in dataclasses.asdict(t).items() if not k.startswith("raw_")} for t in outcome.ticks]
        summary = {k: v for k, v in dataclasses.asdict(outcome).items() if k != "ticks"}
        args.json.write_text(json.dumps({"settings": settings_out, "outcome": summary, "ticks": ticks}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
