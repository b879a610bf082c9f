"""Who a token stands for, remembered for a few seconds by each api process.

Every request used to read its own user row (one statement of about five, and an ORM entity): the
messaging benchmark's most frequent query. A cached entry is a detached copy without the password hash,
read-only for its users. A role change or a disabled account takes effect at once in the process that
made it (`forget`) and within `ttl` seconds in the others.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from sqlalchemy import inspect

from soa_platform.identity.models import User

_COPIED = tuple(attr.key for attr in inspect(User).column_attrs if attr.key != "password_hash")


class UserCache:
    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 20_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, User]] = OrderedDict()

    def get(self, key: str) -> User | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: str, user: User) -> None:
        if self.ttl <= 0 or not user.active:
            return
        copy = User(**{name: getattr(user, name) for name in _COPIED})
        self._entries[key] = (time.monotonic() + self.ttl, copy)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, user_id: int) -> None:
        """Drop every entry of this user (its id and, for OIDC users, its subject)."""
        stale = [key for key, (_, user) in self._entries.items() if user.id == user_id]
        for key in stale:
            del self._entries[key]
