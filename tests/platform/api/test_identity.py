"""Identity: local login, OIDC first login, tenant-bound tokens, roles."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from soa_platform.identity.models import Role
from soa_platform.identity.tokens import TokenService
from tests.platform.harness import PASSWORD, SIGNING_KEY, Tenant, running_tenant, tenant_settings
from tests.platform.oidc_issuer import OidcIssuer


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


async def test_health_and_auth_config_need_no_token(tenant: Tenant) -> None:
    assert (await tenant.client.get("/healthz")).json() == {"status": "ok"}
    assert (await tenant.client.get("/readyz")).status_code == 200
    config = (await tenant.client.get("/v1/auth/config")).json()
    assert config == {"tenant": "alpha", "display_name": "SOA", "local_accounts": True, "oidc": None}


async def test_every_other_endpoint_refuses_a_request_without_a_token(tenant: Tenant) -> None:
    public = {"/healthz", "/readyz", "/v1/auth/config", "/v1/auth/login"}
    checked = 0
    for path, operations in tenant.app.openapi()["paths"].items():
        if path in public:
            continue
        url = path.replace("{emoji}", "smile")
        for name in ("conversation_id", "message_id", "user_id", "export_id"):
            url = url.replace("{" + name + "}", "1")
        for method in operations:
            response = await tenant.client.request(method.upper(), url)
            assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 20


async def test_local_login_issues_a_token_that_works(tenant: Tenant) -> None:
    user = await tenant.user("amina")
    response = await tenant.client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["access_token"]
    me = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == "amina@alpha.gov.pk"


async def test_wrong_password_is_refused_and_audited(tenant: Tenant) -> None:
    user = await tenant.user("bilal")
    admin = await tenant.user("root", Role.admin)
    response = await tenant.client.post("/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "detail": "wrong e-mail or password"}
    audit = (await tenant.client.get("/v1/admin/audit?action=login.failed", headers=admin.headers)).json()
    assert [e["actor_email"] for e in audit["items"]] == [user.email]
    assert "wrong password" not in str(audit)


async def test_login_validation_errors_never_echo_the_password(tenant: Tenant) -> None:
    response = await tenant.client.post("/v1/auth/login", json={"email": "not-an-email", "password": "hunter2-secret"})
    assert response.status_code == 422
    assert "hunter2-secret" not in response.text
    assert response.json()["problems"][0]["loc"] == ["body", "email"]


async def test_a_token_of_another_tenant_is_refused(tenant: Tenant, postgres_url: str) -> None:
    user = await tenant.user()
    # tenant "beta" even shares the signing key here: issuer and audience still bind the token
    beta = TokenService(tenant_settings("beta", postgres_url, None))
    foreign, _ = beta.issue(user.id)
    response = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "token was not issued for this tenant"


async def test_expired_tampered_and_malformed_tokens_are_refused(tenant: Tenant) -> None:
    user = await tenant.user()
    s = tenant.settings
    now = int(time.time())
    claims = {"iss": s.token_issuer, "aud": s.token_audience, "sub": str(user.id), "soa_tenant": s.tenant}
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, SIGNING_KEY, algorithm="HS256")
    forged = jwt.encode({**claims, "iat": now, "exp": now + 60}, "another-key" * 4, algorithm="HS256")
    unsigned = jwt.encode({**claims, "iat": now, "exp": now + 60}, None, algorithm="none")
    for token, detail in (
        (expired, "token expired"),
        (forged, "invalid token"),
        (unsigned, "invalid token"),
        ("abc.def", "malformed token"),
    ):
        response = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert (response.status_code, response.json()["detail"]) == (401, detail)


async def test_a_user_who_was_just_served_loses_access_at_once_when_disabled(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    user = await tenant.user()
    assert (await tenant.client.get("/v1/me", headers=user.headers)).status_code == 200  # now remembered

    response = await tenant.client.patch(f"/v1/admin/users/{user.id}", json={"active": False}, headers=admin.headers)

    assert response.status_code == 200
    assert (await tenant.client.get("/v1/me", headers=user.headers)).status_code == 401


async def test_a_role_change_applies_to_the_next_request(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    user = await tenant.user()
    assert (await tenant.client.get("/v1/admin/audit", headers=user.headers)).status_code == 403

    await tenant.client.patch(f"/v1/admin/users/{user.id}", json={"role": "admin"}, headers=admin.headers)

    assert (await tenant.client.get("/v1/admin/audit", headers=user.headers)).status_code == 200


async def test_a_disabled_account_loses_access(tenant: Tenant) -> None:
    admin = await tenant.user("root", Role.admin)
    user = await tenant.user()
    response = await tenant.client.patch(f"/v1/admin/users/{user.id}", json={"active": False}, headers=admin.headers)
    assert response.status_code == 200
    assert (await tenant.client.get("/v1/me", headers=user.headers)).status_code == 401


async def test_oidc_first_login_creates_the_user_with_admin_role_from_settings(
    issuer: OidcIssuer, postgres_url: str, redis_url: str
) -> None:
    settings = tenant_settings(
        "alpha", postgres_url, redis_url, oidc_issuer=issuer.issuer, oidc_client_id="soa", admins=["Chief@alpha.gov.pk"]
    )
    async with running_tenant(settings) as tenant:
        token = issuer.token(sub="kc-1", email="chief@alpha.gov.pk", email_verified=True, name="The Chief")
        me = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert (me.json()["email"], me.json()["role"], me.json()["display_name"]) == (
            "chief@alpha.gov.pk",
            "admin",
            "The Chief",
        )
        again = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {issuer.token(sub='kc-1')}"})
        assert again.json()["id"] == me.json()["id"]


async def test_oidc_tokens_with_wrong_audience_expiry_key_or_domain_are_refused(
    issuer: OidcIssuer, postgres_url: str, redis_url: str
) -> None:
    settings = tenant_settings("alpha", postgres_url, redis_url, oidc_issuer=issuer.issuer, oidc_client_id="soa")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"sub": "kc-2", "email": "x@alpha.gov.pk", "email_verified": True}
    async with running_tenant(settings) as tenant:
        cases = [
            (issuer.token(audience="other-client", **claims), 401),
            (issuer.token(lifetime=-120, **claims), 401),  # beyond the 30 s leeway
            (issuer.token(key=other_key, **claims), 401),
            (issuer.token(sub="kc-3", email="x@evil.example", email_verified=True), 403),
            (issuer.token(sub="kc-4", email="y@alpha.gov.pk", email_verified=False), 401),
        ]
        for token, status in cases:
            response = await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == status, response.text
        skewed = issuer.token(lifetime=-10, **claims)  # expired 10 s ago: inside the leeway
        assert (await tenant.client.get("/v1/me", headers={"Authorization": f"Bearer {skewed}"})).status_code == 200


async def test_seats_limit_refuses_new_users(postgres_url: str, redis_url: str) -> None:
    async with running_tenant(tenant_settings("alpha", postgres_url, redis_url, seats=2)) as tenant:
        admin = await tenant.user("root", Role.admin)
        await tenant.user()
        body = {"email": "third@alpha.gov.pk", "display_name": "Third"}
        response = await tenant.client.post("/v1/admin/users", json=body, headers=admin.headers)
        assert response.status_code == 403
        assert "seats" in response.json()["detail"]
