"""Password hashing for local accounts (argon2id with the library's current parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# verifying against this keeps an unknown e-mail as slow as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-equally-slow")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
