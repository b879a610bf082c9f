"""The per-process user cache: entries expire, inactive users are never kept, and a copy carries no secret."""

from __future__ import annotations

import time

from soa_platform.identity.cache import UserCache
from soa_platform.identity.models import Role, User


def _user(user_id: int = 7, *, active: bool = True) -> User:
    return User(id=user_id, email=f"u{user_id}@moitt.gov.pk", display_name="U", role=Role.member, active=active,
                password_hash="$argon2id$secret", oidc_subject=None)  # fmt: skip


def test_an_entry_is_served_until_it_expires() -> None:
    cache = UserCache(ttl_seconds=0.2)
    cache.put("local:7", _user())

    first = cache.get("local:7")
    time.sleep(0.25)

    assert first is not None
    assert (first.id, first.role, first.email) == (7, Role.member, "u7@moitt.gov.pk")
    assert cache.get("local:7") is None


def test_the_cached_copy_holds_no_password_hash() -> None:
    cache = UserCache()
    cache.put("local:7", _user())

    cached = cache.get("local:7")

    assert cached is not None
    assert cached.password_hash is None


def test_inactive_users_are_not_kept_and_forget_drops_every_key_of_a_user() -> None:
    cache = UserCache()
    cache.put("local:8", _user(8, active=False))
    cache.put("local:7", _user())
    cache.put("oidc:abc", _user())

    cache.forget(7)

    assert (cache.get("local:8"), cache.get("local:7"), cache.get("oidc:abc")) == (None, None, None)


def test_a_zero_ttl_disables_the_cache_and_the_size_is_bounded() -> None:
    off, small = UserCache(ttl_seconds=0), UserCache(max_entries=2)
    off.put("local:7", _user())
    for user_id in (1, 2, 3):
        small.put(f"local:{user_id}", _user(user_id))

    assert off.get("local:7") is None
    assert [small.get(f"local:{i}") is not None for i in (1, 2, 3)] == [False, True, True]
