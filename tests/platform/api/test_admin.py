"""Admin: users and roles, retention, the audit log and its export request."""

from __future__ import annotations

from soa_platform.identity.models import Role
from tests.platform.harness import Tenant


async def test_admin_endpoints_refuse_members(tenant: Tenant) -> None:
    member = await tenant.user()
    for method, url, body in (
        ("GET", "/v1/admin/audit", None),
        ("GET", "/v1/admin/retention", None),
        ("PUT", "/v1/admin/retention", {"days": 1}),
        ("POST", "/v1/admin/users", {"email": "n@alpha.gov.pk", "display_name": "N"}),
        ("PATCH", f"/v1/admin/users/{member.id}", {"role": "admin"}),
        ("POST", "/v1/admin/audit/exports", None),
    ):
        response = await tenant.client.request(method, url, json=body, headers=member.headers)
        assert response.status_code == 403, (method, url)
        assert response.json()["detail"] == "this needs the admin role"


async def test_role_changes_are_audited_and_take_effect(tenant: Tenant) -> None:
    admin, member = await tenant.user("root", Role.admin), await tenant.user("bilal")
    response = await tenant.client.patch(f"/v1/admin/users/{member.id}", json={"role": "admin"}, headers=admin.headers)
    assert response.json()["role"] == "admin"
    assert (await tenant.client.get("/v1/admin/retention", headers=member.headers)).status_code == 200
    audit = (await tenant.client.get("/v1/admin/audit?action=user.role_changed", headers=admin.headers)).json()
    event = audit["items"][0]
    assert (event["actor_id"], event["target_id"], event["details"]) == (
        admin.id,
        str(member.id),
        {"old": "member", "new": "admin"},
    )
    demote_self = await tenant.client.patch(
        f"/v1/admin/users/{admin.id}", json={"role": "member"}, headers=admin.headers
    )
    assert demote_self.status_code == 400


async def test_creating_users_checks_domain_and_duplicates(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    ok = {"email": "New.Person@alpha.gov.pk", "display_name": "New", "password": "a long enough password"}
    created = await tenant.client.post("/v1/admin/users", json=ok, headers=admin.headers)
    assert created.status_code == 201
    assert created.json()["email"] == "new.person@alpha.gov.pk"
    assert "password" not in created.text
    assert (await tenant.client.post("/v1/admin/users", json=ok, headers=admin.headers)).status_code == 409
    outsider = {"email": "x@elsewhere.org", "display_name": "X"}
    assert (await tenant.client.post("/v1/admin/users", json=outsider, headers=admin.headers)).status_code == 400
    guest = {**outsider, "role": "guest"}
    assert (await tenant.client.post("/v1/admin/users", json=guest, headers=admin.headers)).status_code == 201
    short = {"email": "s@alpha.gov.pk", "display_name": "S", "password": "short"}
    assert (await tenant.client.post("/v1/admin/users", json=short, headers=admin.headers)).status_code == 422


async def test_retention_defaults_to_the_tenant_and_admin_changes_are_audited(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    assert (await tenant.client.get("/v1/admin/retention", headers=admin.headers)).json() == {
        "days": 0,
        "source": "tenant",
    }
    assert (await tenant.client.put("/v1/admin/retention", json={"days": 30}, headers=admin.headers)).status_code == 200
    assert (await tenant.client.put("/v1/admin/retention", json={"days": -1}, headers=admin.headers)).status_code == 422
    assert (await tenant.client.get("/v1/admin/retention", headers=admin.headers)).json() == {
        "days": 30,
        "source": "admin",
    }
    audit = (await tenant.client.get("/v1/admin/audit?action=retention.changed", headers=admin.headers)).json()
    assert [e["details"] for e in audit["items"]] == [{"old": 0, "new": 30}]


async def test_an_export_request_is_recorded_and_pollable(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    requested = await tenant.client.post("/v1/admin/audit/exports", headers=admin.headers)
    assert requested.status_code == 202
    export = requested.json()
    assert export["status"] == "pending"
    polled = await tenant.client.get(f"/v1/admin/audit/exports/{export['id']}", headers=admin.headers)
    assert polled.json()["id"] == export["id"]
    content = await tenant.client.get(f"/v1/admin/audit/exports/{export['id']}/content", headers=admin.headers)
    assert content.status_code == 409
    assert (await tenant.client.get("/v1/admin/audit/exports/999", headers=admin.headers)).status_code == 404
