"""The aggregator's settings: a TOML file, overridden by STOCKWIRE_AGG_* environment variables."""

from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockwire.config import EnvFirst
from stockwire.names import Ident

MIB = 1024 * 1024


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: str | None = None
    client_id: str = "stockwire-aggregator-{site}"
    shared_subscription: bool = False
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_delay_max_s: float = Field(default=30.0, gt=0, le=600)
    # Received but not yet posted. Past this aiomqtt discards (with a warning) and the edge's
    # outbox replays the batch after its ack timeout, so memory stays bounded and nothing is lost.
    incoming_messages_max: int = Field(default=1000, ge=1)


# A browser origin: scheme, host and optional port, no path ("https://ops.example.com").
Origin = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+$")]


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # GETs without a key: only for a trusted network (a warning is logged at start).
    open_reads: bool = False
    # Browser origins allowed to call the API (CORS); none unless listed.
    cors_origins: list[Origin] = Field(default_factory=list)
    # Proxies (IPs or CIDRs) trusted to name the client in X-Forwarded-For. None by default,
    # so a client cannot put another address into the audit log.
    trusted_proxies: list[str] = Field(default_factory=list)


class AggregatorSettings(EnvFirst, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STOCKWIRE_AGG_", env_nested_delimiter="__", extra="forbid"
    )

    site: Ident
    database_url: str = "sqlite+aiosqlite:///var/stockwire.db"
    mqtt: MqttSettings = MqttSettings()
    known_edges: list[Ident] = Field(default_factory=list)
    accept_unknown_edges: bool = False
    payload_bytes_max: int = Field(default=4 * MIB, ge=1024)
    review_confidence_min: float = Field(default=0.5, ge=0.0, le=1.0)
    # Test-only fault injection: exit (code 70) after this many committed batches, before
    # publishing the ack, as a crash between commit and ack would. Never set in production.
    fault_exit_after_commits: int | None = Field(default=None, ge=1)
    api: ApiSettings = ApiSettings()

    @model_validator(mode="after")
    def _fill_client_id(self) -> Self:
        if "{site}" in self.mqtt.client_id:
            mqtt = self.mqtt.model_copy(
                update={"client_id": self.mqtt.client_id.format(site=self.site)}
            )
            object.__setattr__(self, "mqtt", mqtt)
        return self

    def edge_known(self, edge: str) -> bool:
        return self.accept_unknown_edges or edge in self.known_edges
