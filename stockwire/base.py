from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Every payload on the wire: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
