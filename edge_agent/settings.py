"""Typed settings of one edge agent, loaded from TOML with STOCKWIRE_EDGE_* env overrides."""

import re
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge_agent.outbox import UNSENT_TXNS_MAX
from stockwire.broker_connection import BrokerConnection
from stockwire.config import EnvFirst, load_settings
from stockwire.names import Gtin14, Ident, LocationCode, Sku
from stockwire.telemetry import SAMPLES_PER_BATCH_MAX
from stockwire.txn import TXNS_PER_BATCH_MAX


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(BrokerConnection):
    """With a password and no username, the edge logs in as its edge id (as the ACLs expect)."""


class OutboxSettings(_Section):
    path: Path = Path("stockwire-outbox.sqlite")
    rows_max: int = Field(default=100_000, ge=1)
    # Just-stored transactions kept in memory for the publisher; beyond it, it reads SQLite.
    unsent_txns_max: int = Field(default=UNSENT_TXNS_MAX, ge=0, le=100_000)


class PublisherSettings(_Section):
    batch_txns_max: int = Field(default=500, ge=1, le=TXNS_PER_BATCH_MAX)
    linger_ms: int = Field(default=20, ge=0, le=10_000)
    inflight_batches_max: int = Field(default=4, ge=1, le=1000)
    ack_timeout_s: float = Field(default=15.0, gt=0)
    reconnect_min_s: float = Field(default=0.2, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)
    status_interval_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must be <= reconnect_max_s")
        return self


class TelemetrySettings(_Section):
    """Samples on .../telemetry (QoS 0): agent and device health every `interval_s`, shelf lane
    weights downsampled to one per lane per `lane_weight_interval_s`. Waiting samples are held
    in memory up to `queue_samples_max` (thinned beyond it, never blocking transactions)."""

    enabled: bool = True
    interval_s: float = Field(default=10.0, ge=0.1, le=3600)
    lane_weight_interval_s: float = Field(default=5.0, ge=0.1, le=3600)
    queue_samples_max: int = Field(default=10_000, ge=1, le=1_000_000)
    batch_samples_max: int = Field(default=500, ge=1, le=SAMPLES_PER_BATCH_MAX)


MODBUS_UNIT_MAX = 247  # Modbus device (unit/slave) ids are 1..247; 0 is broadcast
LANES_MAX = 256


class CellRef(_Section):
    """One weighing channel: a transmitter's Modbus unit id on the bus, and its channel there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: int = Field(ge=1, le=MODBUS_UNIT_MAX)
    channel: int = Field(default=1, ge=1, le=64)


class LaneConfig(_Section):
    """One lane of a load-cell shelf: one item, its unit weight, and the cells it rests on.

    A weight drop is a pick from `location` (to `pick_to`, or the ledger's @customer); a rise is
    a put-away from `restock_from`, or a return (from @customer) when that is not set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Ident
    location: LocationCode
    sku: Sku | None = None
    gtin: Gtin14 | None = None
    unit_weight_g: float = Field(gt=0, le=1_000_000)
    cells: tuple[CellRef, ...] = Field(min_length=1, max_length=16)
    pick_to: LocationCode | None = None
    restock_from: LocationCode | None = None

    @model_validator(mode="after")
    def _item(self) -> Self:
        if self.sku is None and self.gtin is None:
            raise ValueError(f"lane {self.id!r} needs a sku or a gtin")
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"lane {self.id!r} lists a cell twice")
        return self


EPC_MAP_KEY = r"^(urn:epc:[A-Za-z0-9:._*-]+|[0-9A-Fa-f]{1,64})$"
EPC_MAP_ENTRIES_MAX = 10_000


class DeviceConfig(_Section):
    """One device the edge reads; `profile` is a profile name or a path to a profile TOML.

    An LLRP reader is `tcp = "host:port"`; its `portal` names the dock-door portal profile (a
    name or a path) and `epc_map` maps an EPC URI or an EPC hex prefix to a SKU for EPCs that no
    GS1 scheme decodes (GRAI, private schemes). Hex prefixes are kept upper-case.

    A load-cell shelf is one Modbus bus (`tcp` to a gateway or a transmitter, or `serial` for
    RS-485 RTU) whose transmitters are all of the `profile` model; `shelf` names the shelf
    profile (stability, tolerances, poll rate) and `lanes` say which cells carry which item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Ident
    profile: str = Field(min_length=1)
    tcp: str | None = Field(default=None, pattern=r"^[^\s:]+:[0-9]{1,5}$")
    serial: str | None = Field(default=None, min_length=1)
    location: LocationCode | None = None
    duplicate_window_ms: int | None = Field(default=None, ge=0)
    portal: str | None = Field(default=None, min_length=1)
    epc_map: dict[str, Sku] = Field(default_factory=dict, max_length=EPC_MAP_ENTRIES_MAX)
    shelf: str | None = Field(default=None, min_length=1)
    lanes: tuple[LaneConfig, ...] = Field(default=(), max_length=LANES_MAX)

    @field_validator("lanes")
    @classmethod
    def _lanes_distinct(cls, lanes: tuple[LaneConfig, ...]) -> tuple[LaneConfig, ...]:
        for what, keys in (
            ("lane id", [lane.id for lane in lanes]),
            ("location", [lane.location for lane in lanes]),
            ("cell", [f"unit {c.unit} channel {c.channel}" for lane in lanes for c in lane.cells]),
        ):
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if twice:
                raise ValueError(f"{what} {twice[0]!r} is in more than one lane")
        return lanes

    @field_validator("epc_map")
    @classmethod
    def _epc_keys(cls, epc_map: dict[str, str]) -> dict[str, str]:
        normal = {}
        for key, sku in epc_map.items():
            if not re.match(EPC_MAP_KEY, key):
                raise ValueError(f"epc_map key {key!r} is neither an EPC URI nor a hex prefix")
            normal[key if key.startswith("urn:") else key.upper()] = sku
        if len(normal) != len(epc_map):
            raise ValueError("epc_map has a hex prefix twice (in upper and lower case)")
        return normal

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.tcp is None) == (self.serial is None):
            raise ValueError(f"device {self.id!r} needs exactly one of tcp or serial")
        return self


class EdgeSettings(EnvFirst, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STOCKWIRE_EDGE_", env_nested_delimiter="__", extra="forbid"
    )

    site: Ident
    edge: Ident
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    publisher: PublisherSettings = PublisherSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    tick_ms: int = Field(default=200, ge=10, le=60_000)
    # Per device: readings journaled and not consumed by its recognizer yet; at this mark the
    # edge stops reading the device until its stage catches up.
    queue_readings_max: int = Field(default=1000, ge=1)
    devices: list[DeviceConfig] = Field(default_factory=list)
    # Test-only fault injection: exit (code 70) right after the journal commit that brings the
    # readings journaled by this process to this many, before any stage sees them. Never set
    # in production.
    fault_exit_after_readings: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _unique_devices(self) -> Self:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return self

    @model_validator(mode="after")
    def _username_is_edge(self) -> Self:
        if self.mqtt.password is not None and self.mqtt.username is None:
            object.__setattr__(self, "mqtt", self.mqtt.model_copy(update={"username": self.edge}))
        return self

    def login_mismatch(self) -> str | None:
        """Why a broker with the site ACL (deploy/mosquitto) would drop all this edge sends."""
        username = self.mqtt.username
        if username is None or username == self.edge:
            return None
        return (
            f"mqtt.username {username!r} is not the edge id {self.edge!r}: with the site ACL "
            "(deploy/mosquitto) the broker refuses every message this edge publishes"
        )

    @property
    def client_id(self) -> str:
        template = self.mqtt.client_id_or("stockwire-edge-{site}-{edge}")
        return template.replace("{site}", self.site).replace("{edge}", self.edge)


def load_edge_settings(path: Path | None) -> EdgeSettings:
    """Load and validate; a bad file raises ConfigError naming the file and the field path."""
    return load_settings(EdgeSettings, path)
