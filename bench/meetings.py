"""Meetings benchmark: join through the API to the first decoded frame, and 1 publisher to N subscribers with
the CPU of Janus and of the platform (`soa api`) per participant.

Real processes: PostgreSQL and Redis (tests/support/servers.py), `soa api` as a subprocess, Janus 1.1 on the
veth with 127.0.0.2 (tests/support/janus_server.py; needs root). The peers are aiortc in this process (the
"generator" column): they encode and decode 320x240 VP8, which costs far more than Janus's forwarding.

    .venv/bin/python -m bench.meetings --joins 5 --subscribers 1,3,6 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench.bench_report import fmt, log, table
from bench.messaging_procs import CpuMeter, Stack
from tests.support.janus_server import JanusServer, media_interface
from tests.support.webrtc_peer import JanusSession, Publisher, Subscriber

from soa_platform.db import Database
from soa_platform.identity import service as identity
from soa_platform.identity.models import Role
from soa_platform.identity.tokens import TokenService
from soa_platform.settings import PlatformSettings

TARGET_FIRST_FRAME_SECONDS = 1.5


class Client:
    """The api over HTTP as one user."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def create_meeting(self, invitees: list[int]) -> int:
        response = await self.http.post(
            "/v1/meetings", json={"title": "bench", "invitee_ids": invitees}, headers=self.headers
        )
        response.raise_for_status()
        return int(response.json()["id"])

    async def join(self, meeting_id: int) -> dict[str, Any]:
        response = await self.http.post(f"/v1/meetings/{meeting_id}/join", headers=self.headers)
        response.raise_for_status()
        return dict(response.json())


async def users(settings: PlatformSettings, count: int) -> list[tuple[int, str]]:
    db = Database(settings.sqlalchemy_url)
    tokens = TokenService(settings)
    made = []
    try:
        for i in range(count):
            async with db.unit_of_work() as uow:
                user = await identity.create_user(
                    uow.session, settings, None, email=f"u{i}@bench.gov.pk", display_name=f"u{i}", role=Role.member,
                    password="bench password 123",  # noqa: S106 - loopback-only bench users
                )  # fmt: skip
            made.append((user.id, tokens.issue(user.id)[0]))
    finally:
        await db.dispose()
    return made


async def publish(joined: dict[str, Any], closing: list[Any]) -> Publisher:
    access = joined["janus"]
    session = await JanusSession(access["url"], access["token"]).open()
    closing.append(session)
    publisher = Publisher(session, access["room"], access["token"], pin=access["pin"])
    closing.append(publisher)
    return await publisher.join_and_publish()


async def subscribe(joined: dict[str, Any], feed: int, closing: list[Any]) -> Subscriber:
    access = joined["janus"]
    session = await JanusSession(access["url"], access["token"]).open()
    closing.append(session)
    subscriber = Subscriber(session, access["room"], access["token"], pin=access["pin"])
    closing.append(subscriber)
    return await subscriber.subscribe([feed])


async def close_all(closing: list[Any]) -> None:
    for peer in reversed(closing):
        try:
            await peer.close()
        except Exception as error:  # a benchmark's cleanup goes on
            log(f"close failed: {error!r}")
    closing.clear()


async def first_frame_latency(host: Client, guest: Client, guest_id: int) -> tuple[float, float]:
    """(join API seconds, join-to-first-decoded-frame seconds) for one subscriber of a fresh meeting."""
    closing: list[Any] = []
    try:
        meeting = await host.create_meeting([guest_id])
        publisher = await publish(await host.join(meeting), closing)
        started = time.monotonic()
        joined = await guest.join(meeting)
        api_seconds = time.monotonic() - started
        subscriber = await subscribe(joined, publisher.participant_id, closing)
        await subscriber.wait_for_frames(1, 10)
        assert subscriber.first_frame_at is not None
        return api_seconds, subscriber.first_frame_at - started
    finally:
        await close_all(closing)


async def fan_out(host: Client, guests: list[tuple[int, Client]], meter: CpuMeter, seconds: float) -> dict[str, float]:
    """1 publisher -> len(guests) subscribers for ``seconds``: CPU seconds per process and decoded fps."""
    closing: list[Any] = []
    try:
        meeting = await host.create_meeting([gid for gid, _ in guests])
        publisher = await publish(await host.join(meeting), closing)
        subscribers = [await subscribe(await c.join(meeting), publisher.participant_id, closing) for _, c in guests]
        await asyncio.gather(*(s.wait_for_frames(10, 15) for s in subscribers))
        meter.lap()
        before = [s.frames for s in subscribers]
        await asyncio.sleep(seconds)
        cpu = meter.lap()
        fps = [(s.frames - b) / seconds for s, b in zip(subscribers, before, strict=True)]
        return {**cpu, "fps": min(fps)}
    finally:
        await close_all(closing)


async def run(args: argparse.Namespace, stack: Stack, janus: JanusServer, settings: PlatformSettings) -> None:
    sizes = [int(n) for n in args.subscribers.split(",")]
    people = await users(settings, 1 + max(sizes))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        clients = [(uid, Client(http, token)) for uid, token in people]
        host = clients[0][1]
        log(f"first-frame latency over {args.joins} joins")
        samples = [await first_frame_latency(host, clients[1][1], clients[1][0]) for _ in range(args.joins)]
        api = [a for a, _ in samples]
        frame = [f for _, f in samples]
        print(f"\nJoin -> first decoded frame, {args.joins} joins (target < {TARGET_FIRST_FRAME_SECONDS} s):\n")
        print(table(
            [["join API (POST /join)", fmt(statistics.median(api) * 1000, ".0f"), fmt(max(api) * 1000, ".0f")],
             ["join -> first decoded frame", fmt(statistics.median(frame) * 1000, ".0f"),
              fmt(max(frame) * 1000, ".0f")]],
            ["step", "median ms", "max ms"],
        ))  # fmt: skip
        roots: dict[str, list[int | None]] = {"janus": [janus._process.pid if janus._process else None],
                                              "api": [stack.api.pid if stack.api else None]}  # fmt: skip
        meter = CpuMeter(roots)
        rows = []
        for n in sizes:
            log(f"fan-out: 1 publisher -> {n} subscribers for {args.seconds} s")
            cpu = await fan_out(host, clients[1 : 1 + n], meter, args.seconds)
            participants = n + 1
            janus_pct, api_pct = 100 * cpu["janus"] / args.seconds, 100 * cpu["api"] / args.seconds
            rows.append([
                str(n), fmt(cpu["fps"], ".0f"), fmt(janus_pct), fmt(janus_pct / participants, ".2f"), fmt(api_pct),
                fmt(api_pct / participants, ".2f"), fmt(100 * cpu["generator"] / args.seconds, ".0f"),
            ])  # fmt: skip
        print(f"\n1 publisher -> N subscribers, 320x240 VP8, {args.seconds} s each (CPU % of one core):\n")
        print(table(rows, ["N", "min decoded fps", "janus %", "janus %/participant", "api %", "api %/participant",
                           "peers (aiortc) %"]))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=5)
    parser.add_argument("--subscribers", default="1,3,6", help="comma-separated fan-out sizes")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="soa-bench-meetings-"))
    workdir.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data dir below
    with media_interface():
        janus = JanusServer.launch(workdir / "janus")
        janus_env = {
            "SOA_JANUS_URL": janus.url, "SOA_JANUS_ADMIN_URL": janus.admin_url, "SOA_JANUS_PUBLIC_URL": janus.ws_url,
            "SOA_JANUS_API_SECRET": janus.api_secret, "SOA_JANUS_ADMIN_SECRET": janus.admin_secret,
            "SOA_MEETINGS_MAX_PARTICIPANTS": "1000", "SOA_MEETINGS_MAX_CONCURRENT_MEETINGS": "1000",
            "SOA_ALLOWED_EMAIL_DOMAINS": "bench.gov.pk",
        }  # fmt: skip
        stack = Stack(workdir, api_env=janus_env, rate_limit="1000/second")
        try:
            stack.start_stores()
            stack.migrate()
            stack.start_api()
            values = {**stack.settings_values(), **{k.removeprefix("SOA_").lower(): v for k, v in janus_env.items()}}
            settings = PlatformSettings.model_validate({**values, "allowed_email_domains": ["bench.gov.pk"]})
            asyncio.run(run(args, stack, janus, settings))
            for problem in stack.problems():
                log(problem)
        finally:
            stack.close()
            janus.close()


if __name__ == "__main__":
    main()
