"""A weighing transmitter model: where its Modbus registers hold a channel's weight and status.

Addresses follow `address_base`: 0 = the offsets sent on the wire (what pymodbus and Telegraf
take), 1 = the manual's 1-based register numbers (holding register 40008 is written 8 and read
at offset 7: the classic off-by-one, stated once here). A transmitter with several channels
(a multi-scale module) repeats its map every `channel_stride` registers.

`weight` is converted to grams: grams = raw * scale + offset. Where the model sends a magnitude
and the sign in its status register (Laumas), `status.negative_bit` says so.
"""

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from device_profiles.base import ProfileModel, ProfileName
from device_profiles.registers import ByteOrder, DataType, register_count
from device_profiles.serial import SerialSettings

RegisterType = Literal["holding", "input"]
Transport = Literal["tcp", "rtu"]
ADDRESS_MAX = 0xFFFF
REGISTERS_PER_READ_MAX = 125  # FC03/FC04 limit of the Modbus spec
MODBUS_TCP_PORT = 502
# 30001..49999: a manual's "4x"/"3x" register number copied with its prefix; with address_base =
# 1 the prefix is dropped (40008 is written 8). A map that really sits there uses address_base 0.
PREFIXED_MIN, PREFIXED_MAX = 30_001, 49_999


class NumberField(ProfileModel):
    register_type: RegisterType = Field(default="holding", alias="register")
    address: int = Field(ge=0, le=ADDRESS_MAX)
    type: DataType
    byte_order: ByteOrder = "ABCD"
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)

    @field_validator("scale")
    @classmethod
    def _scale_not_zero(cls, scale: float) -> float:
        if scale == 0:
            raise ValueError("scale 0 makes every weight 0 g")
        return scale


Bit = int


class StatusField(ProfileModel):
    """A 16-bit status register; bit 0 is the least significant."""

    register_type: RegisterType = Field(default="holding", alias="register")
    address: int = Field(ge=0, le=ADDRESS_MAX)
    stable_bit: Bit | None = Field(default=None, ge=0, le=15)
    stable_when_set: bool = Field(
        default=True, description="False: the bit means MOTION / unstable (PT113, TUNA)"
    )
    negative_bit: Bit | None = Field(default=None, ge=0, le=15)
    error_bits: tuple[Bit, ...] = Field(default=(), max_length=16)
    ok_bit: Bit | None = Field(default=None, ge=0, le=15, description="set when data is valid")

    @model_validator(mode="after")
    def _bits_distinct(self) -> Self:
        bits = [b for b in (self.stable_bit, self.negative_bit, self.ok_bit) if b is not None]
        bits += list(self.error_bits)
        if any(not 0 <= b <= 15 for b in self.error_bits):
            raise ValueError("error_bits must be in 0..15")
        if len(set(bits)) != len(bits):
            raise ValueError("a status bit has two meanings")
        return self


class WeighingProfile(ProfileModel):
    """One model of weighing transmitter (or weighing module) read over Modbus."""

    kind: Literal["weighing-transmitter"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    vendor: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    transports: tuple[Transport, ...] = Field(min_length=1, max_length=2)
    address_base: Literal[0, 1] = 0
    channels: int = Field(default=1, ge=1, le=64)
    channel_stride: int = Field(default=0, ge=0, le=ADDRESS_MAX)
    weight: NumberField
    status: StatusField | None = None
    registers_per_read_max: int = Field(default=REGISTERS_PER_READ_MAX, ge=1, le=125)
    response_timeout_ms: int = Field(default=500, ge=10, le=10_000)
    tcp_port: int = Field(default=MODBUS_TCP_PORT, ge=1, le=65535)
    serial: SerialSettings = SerialSettings(baud=9600)

    @model_validator(mode="after")
    def _map_fits(self) -> Self:
        if self.channels > 1 and self.channel_stride == 0:
            raise ValueError("channel_stride: must be > 0 when channels > 1")
        for name, _, address, count in self.fields():
            if self.address_base == 1 and PREFIXED_MIN <= address <= PREFIXED_MAX:
                raise ValueError(
                    f"{name}.address: {address} looks like a 4x/3x register number; with "
                    f"address_base = 1 write it without the prefix ({address % 10_000})"
                )
            wire = address - self.address_base
            if wire < 0:
                raise ValueError(f"{name}.address: {address} is below address_base")
            last = wire + count - 1 + (self.channels - 1) * self.channel_stride
            if last > ADDRESS_MAX:
                raise ValueError(f"{name}.address: channel {self.channels} ends past {ADDRESS_MAX}")
        signed = self.weight.type.startswith(("INT", "FLOAT"))
        if signed and self.status is not None and self.status.negative_bit is not None:
            raise ValueError("status.negative_bit: only for an unsigned weight (UINT*)")
        if register_count(self.weight.type) > self.registers_per_read_max:
            raise ValueError(
                f"registers_per_read_max: {self.registers_per_read_max} is less than the "
                f"{register_count(self.weight.type)} registers of a {self.weight.type} weight"
            )
        self._no_register_twice()
        return self

    def _no_register_twice(self) -> None:
        """Every channel's weight and status on registers of their own (stride, overlaps)."""
        owner: dict[tuple[str, int], str] = {}
        for channel in range(1, self.channels + 1):
            for name, register_type, address, count in self.fields():
                start = self.wire_address(address, channel)
                for wire in range(start, start + count):
                    here = f"{name} of channel {channel}"
                    other = owner.setdefault((register_type, wire), here)
                    if other != here:
                        raise ValueError(
                            f"{name}.address: {here} and {other} share {register_type} "
                            f"register {wire} (wire offset; check channel_stride)"
                        )

    def fields(self) -> list[tuple[str, RegisterType, int, int]]:
        """(name, register type, address as written, register count) of the weight, then the
        status (when the model has one): the map of channel 1."""
        weight = self.weight
        fields = [("weight", weight.register_type, weight.address, register_count(weight.type))]
        if self.status is not None:
            fields.append(("status", self.status.register_type, self.status.address, 1))
        return fields

    def wire_address(self, address: int, channel: int) -> int:
        """The on-the-wire offset of a field at `address` for channel 1..channels."""
        return address - self.address_base + (channel - 1) * self.channel_stride
