"""The aggregator's settings: a TOML file, overridden by STOCKWIRE_AGG_* environment variables."""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockwire.broker_connection import BrokerConnection
from stockwire.config import EnvFirst
from stockwire.names import Ident

MIB = 1024 * 1024


class MqttSettings(BrokerConnection):
    shared_subscription: bool = False
    reconnect_delay_max_s: float = Field(default=30.0, gt=0, le=600)
    # Received but not yet posted. Past this aiomqtt discards (with a warning) and the edge's
    # outbox replays the batch after its ack timeout, so memory stays bounded and nothing is lost.
    incoming_messages_max: int = Field(default=1000, ge=1)


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


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
        template = self.mqtt.client_id_or("stockwire-aggregator-{site}")
        mqtt = self.mqtt.model_copy(update={"client_id": template.replace("{site}", self.site)})
        object.__setattr__(self, "mqtt", mqtt)
        return self

    def edge_known(self, edge: str) -> bool:
        return self.accept_unknown_edges or edge in self.known_edges
