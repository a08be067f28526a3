"""A load-cell shelf: how the edge polls its lanes and turns their weight into item counts.

Every value has its unit last in its name. The recognizer (edge_agent/recognizers/weight.py)
documents how each one is used.
"""

from typing import Literal

from pydantic import Field

from device_profiles.base import ProfileModel, ProfileName


class ShelfProfile(ProfileModel):
    kind: Literal["shelf"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    poll_interval_ms: int = Field(default=100, ge=10, le=60_000)
