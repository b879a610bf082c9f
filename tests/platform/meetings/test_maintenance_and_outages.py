"""Room maintenance (a Celery task beat runs) and what meetings do while Janus is down."""

from __future__ import annotations

from soa_platform.meetings.tasks import MAINTAIN_ROOMS, run_maintenance
from soa_platform.worker.app import beat_schedule, create_celery
from tests.platform.harness import Tenant
from tests.platform.meetings.meeting_client import create_meeting, join
from tests.support.janus_server import JanusServer


def test_beat_runs_room_maintenance(tenant: Tenant) -> None:
    schedule = beat_schedule(tenant.settings)["meeting-rooms"]
    assert schedule["task"] == MAINTAIN_ROOMS
    assert schedule["options"]["expires"] <= schedule["schedule"]
    assert MAINTAIN_ROOMS in create_celery(tenant.settings).tasks


async def test_maintenance_with_janus_down_reports_it_and_changes_nothing(tenant: Tenant, janus: JanusServer) -> None:
    host = await tenant.user("host")
    meeting = await create_meeting(tenant, host)
    await join(tenant, host, meeting["id"])
    janus.kill()
    result = await run_maintenance(tenant.platform.db, tenant.settings)
    assert (result.unreachable, result.recreated, result.closed) == (True, 0, 0)
    got = (await tenant.client.get(f"/v1/meetings/{meeting['id']}", headers=host.headers)).json()
    assert got["status"] == "live"


async def test_leaving_works_while_janus_is_down_and_a_removal_says_it_could_not(
    tenant: Tenant, janus: JanusServer
) -> None:
    host, guest = await tenant.user("host"), await tenant.user("guest")
    meeting = await create_meeting(tenant, host, invitee_ids=[guest.id])
    url = f"/v1/meetings/{meeting['id']}"
    await join(tenant, host, meeting["id"])
    guest_pid = (await join(tenant, guest, meeting["id"]))["participant_id"]
    janus.kill()
    removal = await tenant.client.delete(f"{url}/participants/{guest_pid}", headers=host.headers)
    assert removal.status_code == 503  # the moderator learns the removal did not happen
    assert (await tenant.client.post(f"{url}/leave", headers=host.headers)).status_code == 204
    present = (await tenant.client.get(f"{url}/participants", headers=host.headers)).json()["items"]
    assert [p["id"] for p in present] == [guest_pid]
