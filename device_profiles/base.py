"""What every profile model shares: frozen, no unknown keys, a file-stem name."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ProfileName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class ProfileModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
