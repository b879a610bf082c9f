"""Request and response bodies of admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=0, le=36500, description="0 keeps messages forever")


class RetentionOut(Retention):
    source: str = Field(description="'admin' when set here, 'tenant' when it comes from the SOATenant")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_id: int | None
    actor_email: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    ip: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_before: int | None


class AuditExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    event_count: int
