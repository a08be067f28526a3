"""What the master-data routes (/items, /locations) take and return."""

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from stockwire.names import Gtin14, LocationCode, Sku, Uom

Tracking = Literal["none", "lot", "serial"]
AbcClass = Literal["A", "B", "C"]
LocationKind = Literal["site", "zone", "aisle", "bin", "dock", "lane"]
NegativeStock = Literal["forbid", "allow"]
# A physical location: as on the wire, without the '@' of the virtual ones.
PhysicalCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
PACKS_PER_ITEM_MAX = 20
QTY_MAX = 1_000_000_000


class _Strict(BaseModel):
    # Wrong JSON types are a 422, not coerced ("12" is not 12).
    model_config = ConfigDict(extra="forbid", strict=True)


class PackIn(_Strict):
    gtin: Gtin14
    uom: Uom = Field(description="the pack's unit: CS, PL, ...")
    qty: int = Field(gt=0, le=QTY_MAX, description="base units in one pack")


class ItemAttributes(_Strict):
    unit_weight_g: float | None = Field(default=None, gt=0, le=10_000_000)
    tracking: Tracking = "none"
    shelf_life_days: int | None = Field(default=None, ge=1, le=36_500)
    reorder_point: int | None = Field(default=None, ge=0, le=QTY_MAX)
    min_qty: int | None = Field(default=None, ge=0, le=QTY_MAX)
    max_qty: int | None = Field(default=None, ge=0, le=QTY_MAX)
    abc_class: AbcClass | None = None


class ItemIn(ItemAttributes):
    sku: Sku
    gtin: Gtin14 | None = Field(
        default=None,
        description="the base unit's GTIN; if a scanner already made an item of it (no sku"
        " yet), that item gets this sku and keeps its stock",
    )
    base_uom: Uom = "EA"
    packs: list[PackIn] = Field(default_factory=list, max_length=PACKS_PER_ITEM_MAX)


class ItemPatch(_Strict):
    """Only the fields sent change; null clears one."""

    unit_weight_g: float | None = Field(default=None, gt=0, le=10_000_000)
    tracking: Tracking | None = None
    shelf_life_days: int | None = Field(default=None, ge=1, le=36_500)
    reorder_point: int | None = Field(default=None, ge=0, le=QTY_MAX)
    min_qty: int | None = Field(default=None, ge=0, le=QTY_MAX)
    max_qty: int | None = Field(default=None, ge=0, le=QTY_MAX)
    abc_class: AbcClass | None = None

    @model_validator(mode="after")
    def _tracking_kept(self) -> Self:
        if "tracking" in self.model_fields_set and self.tracking is None:
            raise ValueError("tracking cannot be null: none, lot or serial")
        return self


class Pack(BaseModel):
    gtin: str
    uom: str
    qty: int


class Item(BaseModel):
    sku: str | None
    gtin: str | None
    base_uom: str
    flagged: bool = Field(description="made from a sensor's first sight; no person has set it")
    unit_weight_g: float | None
    tracking: Tracking
    shelf_life_days: int | None
    reorder_point: int | None
    min_qty: int | None
    max_qty: int | None
    abc_class: str | None
    packs: list[Pack]


class ItemPage(BaseModel):
    items: list[Item]
    next: int | None


class LocationIn(_Strict):
    code: PhysicalCode
    parent: LocationCode | None = None
    kind: LocationKind | None = None
    negative_stock: NegativeStock | None = Field(
        default=None, description="null: as the parent (the site's default at a root)"
    )


class LocationPatch(_Strict):
    """Only the fields sent change: `parent` moves it (null: a root); `negative_stock` null
    inherits again."""

    parent: LocationCode | None = None
    kind: LocationKind | None = None
    negative_stock: NegativeStock | None = None


class Location(BaseModel):
    code: str
    parent: str | None
    kind: str | None
    virtual: bool
    negative_stock: str | None = Field(description="its own policy; null: inherited")
    effective_negative_stock: NegativeStock


class LocationPage(BaseModel):
    items: list[Location]
    next: int | None
