"""The aggregator's settings: a TOML file, overridden by STOCKWIRE_AGG_* environment variables."""

from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregator.database import supported_url
from stockwire.broker_connection import BrokerConnection
from stockwire.config import EnvFirst
from stockwire.names import Ident

MIB = 1024 * 1024
KIB = 1024
DAY_S = 86_400


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(BrokerConnection):
    # "5" (MQTT 5: the Receive Maximum below is sent to the broker) or "3.1.1" for brokers
    # without MQTT 5 (the demo's amqtt).
    protocol: Literal["5", "3.1.1"] = "5"
    shared_subscription: bool = False
    reconnect_delay_max_s: float = Field(default=30.0, gt=0, le=600)
    # Received and not yet posted, dead-lettered or refused. Each QoS 1 message is
    # acknowledged to the broker only once handled, so the broker keeps the rest of a flood;
    # at this many waiting, ingest stops reading the socket. Nothing is ever discarded.
    # Memory: up to this many payloads of up to payload_bytes_max.
    incoming_messages_max: int = Field(default=1000, ge=2, le=65_535)


# A browser origin: scheme, host and optional port, no path ("https://ops.example.com").
Origin = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+$")]


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # GETs without a key: only for a trusted network (a warning is logged at start).
    open_reads: bool = False
    # Browser origins allowed to call the API (CORS); none unless listed.
    cors_origins: list[Origin] = Field(default_factory=list)
    # Proxies (IPs or CIDRs) trusted to name the client in X-Forwarded-For. None by default,
    # so a client cannot put another address into the audit log.
    trusted_proxies: list[str] = Field(default_factory=list)


class RateLimitSettings(_Section):
    """Per edge (the edge level of the topic): messages beyond it are refused and counted."""

    messages_per_s: float = Field(default=500.0, gt=0)
    burst_messages: int = Field(default=2000, ge=1)
    # At most one rate_limited alert (and one warning line) per edge per this interval.
    alert_interval_s: float = Field(default=60.0, gt=0)
    # Buckets kept at once; a flood of new edge names beyond it shares one bucket.
    edges_max: int = Field(default=10_000, ge=1)


class BoundsSettings(_Section):
    """Plausibility bounds on each transaction; outside them `policy` decides."""

    future_skew_s: float = Field(default=300.0, ge=0)  # occurred_at ahead of our clock
    age_max_s: float = Field(default=30 * DAY_S, gt=0)  # occurred_at behind our clock
    qty_max: int = Field(default=100_000, ge=1)
    qty_max_per_item: dict[str, int] = Field(default_factory=dict)  # sku or gtin -> max
    # review: post as pending with the reason (a person approves or voids);
    # reject: ack rejected with the reason (kept in the rejected table).
    policy: Literal["review", "reject"] = "review"


class LedgerSettings(_Section):
    """The site's ledger rules (aggregator.ledger.policy)."""

    # create: an item first seen from a sensor is made, flagged for a person to complete;
    # review: its transaction waits in review (pending) until the item exists or is approved.
    unknown_items: Literal["create", "review"] = "create"
    # Where no location up the tree says: forbid rejects a posting that would drive a
    # balance below zero (with the reason); allow posts it and raises a negative_stock alert.
    negative_stock: Literal["allow", "forbid"] = "allow"
    # A lot-tracked item without a lot, a receipt of an expired lot (expiry before the day it
    # happened), a serial-tracked item whose qty is not its number of serials: reject (acked
    # rejected with the reason) or review (pending with the reason). Conflicts (a lot's other
    # expiry, a serial in stock elsewhere) always wait in review.
    tracking_violations: Literal["reject", "review"] = "reject"


class CountSettings(_Section):
    """Cycle counts (aggregator/ledger/count_tasks.py)."""

    # A task's counted line whose |variance| exceeds either (when set) waits for a person
    # other than the counter (approver role) before its adjustment posts.
    approval_units: int | None = Field(default=10, ge=0)
    approval_percent: float | None = Field(default=5.0, ge=0)
    # GET /counts/due: days between counts of an item at a location, by ABC class.
    every_days_a: int = Field(default=30, ge=1)
    every_days_b: int = Field(default=91, ge=1)
    every_days_c: int = Field(default=365, ge=1)


class TelemetrySinkSettings(_Section):
    """Where the aggregator writes time-series telemetry (InfluxDB v2 write API).

    Off while `url` is None. When the server is down or slow, points wait in a buffer of
    `buffer_points_max`; past it, edge telemetry is dropped first, then the oldest aggregator
    points (counted and logged). Ingest never waits on the sink.
    """

    url: str | None = None  # e.g. http://influxdb:8086
    org: str = "stockwire"
    bucket: str = "stockwire"
    token: SecretStr | None = None  # env STOCKWIRE_AGG_TELEMETRY__TOKEN; never logged
    batch_points_max: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=600)
    buffer_points_max: int = Field(default=100_000, ge=1, le=10_000_000)
    retry_min_s: float = Field(default=1.0, gt=0, le=600)
    retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    timeout_s: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"telemetry.url must be http:// or https://, not {url!r}")
        return url

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("telemetry.retry_max_s must be >= retry_min_s")
        if self.buffer_points_max < self.batch_points_max:
            raise ValueError("telemetry.buffer_points_max must be >= batch_points_max")
        return self

    def token_text(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None


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
    # Of a dead letter's payload only this prefix is kept, with its size and SHA-256.
    dead_letter_payload_bytes_max: int = Field(default=64 * KIB, ge=0)
    review_confidence_min: float = Field(default=0.5, ge=0.0, le=1.0)
    # A movement from a physical location of an EPC the ledger holds at another one waits in
    # review; false lets the EPC follow it (receiving an EPC in stock always waits in review).
    review_epcs_moved_elsewhere: bool = True
    rate_limit: RateLimitSettings = RateLimitSettings()
    bounds: BoundsSettings = BoundsSettings()
    ledger: LedgerSettings = LedgerSettings()
    counts: CountSettings = CountSettings()
    # Test-only fault injection: exit (code 70) after this many committed batches, before
    # publishing the ack, as a crash between commit and ack would. Never set in production.
    fault_exit_after_commits: int | None = Field(default=None, ge=1)
    api: ApiSettings = ApiSettings()
    telemetry: TelemetrySinkSettings = TelemetrySinkSettings()

    @field_validator("database_url")
    @classmethod
    def _supported(cls, url: str) -> str:
        return supported_url(url)

    @model_validator(mode="after")
    def _fill_client_id(self) -> Self:
        template = self.mqtt.client_id_or("stockwire-aggregator-{site}")
        mqtt = self.mqtt.model_copy(update={"client_id": template.replace("{site}", self.site)})
        object.__setattr__(self, "mqtt", mqtt)
        return self

    def edge_known(self, edge: str) -> bool:
        return self.accept_unknown_edges or edge in self.known_edges
