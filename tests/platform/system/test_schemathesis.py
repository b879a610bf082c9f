"""The OpenAPI contract of a running `soa api` (PostgreSQL + Redis), checked by schemathesis: no operation
answers 5xx or off-schema, and every operation but the public ones refuses a missing or foreign token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from soa_platform.bootstrap import build_api
from soa_platform.identity.models import Role
from soa_platform.identity.tokens import TokenService
from soa_platform.settings import PlatformSettings
from tests.platform.system.conftest import KEY, TENANT, Member, Stack, make_stack
from tests.support.servers import PostgresServer, RedisServer

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/auth/config"), ("POST", "/v1/auth/login")}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
MAX_EXAMPLES = 15


@dataclass(frozen=True)
class Api:
    base_url: str
    admin: Member
    spec: dict[str, Any]


async def seed(stack: Stack) -> Member:
    """An admin and a member sharing channel 1, with message 1 (and a reply and a reaction) in it."""
    admin, bob = await stack.members("root", role=Role.admin) + await stack.members("bob")
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.base_url, headers=admin.headers) as client:
        channel = await client.post(
            "/v1/conversations", json={"kind": "public", "name": "general", "member_ids": [bob.id]}
        )
        assert channel.json()["id"] == 1, channel.text
        message = await client.post("/v1/conversations/1/messages", json={"body": "hi <@2>", "idempotency_key": "a"})
        assert message.json()["id"] == 1, message.text
        reply = {"body": "thread", "idempotency_key": "b", "thread_root_id": 1}
        assert (await client.post("/v1/conversations/1/messages", json=reply)).status_code == 201
        assert (await client.put("/v1/messages/1/reactions/wave")).status_code == 204
    return admin


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Api]:
    """One api for the module: the property tests are read-mostly and each starts from the same seed."""
    postgres_server.start()
    redis_server.start()
    redis_server.flushall()
    database = f"test_{uuid.uuid4().hex[:12]}"
    stack = make_stack(
        tmp_path_factory.mktemp("schemathesis"), postgres_server.create_database(database), redis_server.url
    )
    try:
        admin = asyncio.run(seed(stack))
        spec = httpx.get(f"{stack.base_url}/openapi.json").json()
        yield Api(stack.base_url, admin, spec)
    finally:
        stack.stop()
        postgres_server.drop_database(database)


def built_spec() -> dict[str, Any]:
    """The OpenAPI document the api builds (the stores are never contacted: this only lists the routes)."""
    settings = PlatformSettings(
        environment="test", signing_key=KEY, session_key=KEY, database_url="sqlite+aiosqlite://"
    )
    return build_api(settings, tracing=False).openapi()


# collected from the app in this process (schemathesis' `from_fixture` needs pytest < 9), and checked against
# what the running api serves by the first test below
contract = schemathesis.openapi.from_dict(built_spec())


def test_the_running_api_serves_this_contract(api: Api) -> None:
    assert api.spec["paths"] == contract.raw_schema["paths"]
    assert api.spec["components"] == contract.raw_schema["components"]


@contract.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_no_operation_answers_5xx_or_off_schema_and_each_enforces_its_token(
    case: schemathesis.Case[Any], api: Api
) -> None:
    case.call_and_validate(base_url=api.base_url, headers=api.admin.headers, checks=CHECKS)


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def foreign_tokens(api: Api) -> dict[str, str]:
    """Tokens this tenant must refuse, each for the admin's own user id."""
    common: dict[str, Any] = {"environment": "test", "public_url": api.base_url, "session_key": KEY}
    other_tenant = PlatformSettings(tenant="other", signing_key=KEY, **common)  # even with this tenant's key
    other_key = PlatformSettings(tenant=TENANT, signing_key="w" * 48, **common)
    return {
        "another tenant's": TokenService(other_tenant).issue(api.admin.id)[0],
        "signed with another key": TokenService(other_key).issue(api.admin.id)[0],
        "malformed": "not-a-jwt",
    }


def test_every_operation_but_the_public_ones_refuses_a_missing_or_foreign_token(api: Api) -> None:
    protected = [op for op in operations(api.spec) if op not in PUBLIC]
    assert len(protected) > 20
    assert set(operations(api.spec)) >= PUBLIC
    attempts: dict[str, dict[str, str]] = {"no token": {}} | {
        name: {"Authorization": f"Bearer {token}"} for name, token in foreign_tokens(api).items()
    }
    answers = {}
    with httpx.Client(base_url=api.base_url) as client:
        for method, template in protected:
            path = template.format_map(_Ones())
            body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
            for name, headers in attempts.items():
                answers[(method, template, name)] = client.request(method, path, json=body, headers=headers).status_code
    assert {key: status for key, status in answers.items() if status != 401} == {}


class _Ones(dict[str, str]):
    """Fills every path parameter with `1` (the seeded channel, message and user)."""

    def __missing__(self, key: str) -> str:
        return "1" if key != "emoji" else "wave"


def test_the_seeded_admin_token_is_accepted(api: Api) -> None:
    """The refusals above are about the tokens, not the account."""
    me = httpx.get(f"{api.base_url}/v1/me", headers=api.admin.headers)
    assert me.status_code == 200, me.text
