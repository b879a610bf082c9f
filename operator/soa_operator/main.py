"""Registers every handler with kopf; `soa operator run` starts it."""

from __future__ import annotations

from soa_operator.handlers import deletion, startup, tenant_loop, wakeups

HANDLER_MODULES = (startup, tenant_loop, wakeups, deletion)
