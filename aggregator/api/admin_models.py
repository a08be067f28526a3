"""What the admin routes (/keys, /audit) take and return."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from aggregator.roles import Role
from stockwire.names import Ident


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Ident = Field(description="who or what holds the key; shown in the audit log")
    role: Role


class KeyInfo(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class CreatedKey(KeyInfo):
    key: str = Field(description="the API key: shown only now, only its hash is kept")


class AuditRecord(BaseModel):
    id: int
    at: datetime
    request_id: str
    actor: str = Field(description="the key's name, 'anonymous' or 'cli'")
    key_id: str | None
    role: Role | None
    action: str
    target: str | None
    method: str
    path: str
    client: str | None
    status: int


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next: int | None
