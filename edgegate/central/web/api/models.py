"""Request bodies of the REST API (they make the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Body(BaseModel):
    model_config = {"extra": "forbid"}


class PersonIn(Body):
    id: str = Field(max_length=128, description="Person id.")
    name: str | None = Field(None, max_length=200, description="Display name.")
    groups: list[str] | None = Field(None, description="Groups (replace the current ones).")
    valid_from: float | None = Field(None, description="UNIX seconds.")
    valid_until: float | None = Field(None, description="UNIX seconds.")
    cards: list[str] = Field(default_factory=list, description="Card UIDs to add (hex).")


class CardIn(Body):
    card: str = Field(max_length=64, description="Card UID, hex.")
    label: str = Field("", max_length=200)


class DisableIn(Body):
    reason: str = Field("lost", max_length=500, description="Why (lost, stolen, ...).")


class EraseIn(Body):
    reason: str = Field(
        min_length=1, max_length=500, description="The request it answers (no names: audited)."
    )
    confirm: bool = Field(
        description="Must be true: the erasure cannot be undone (see GET .../erasure first)."
    )


class ReplaceIn(Body):
    new: str = Field(max_length=64, description="The new card's UID.")
    reason: str = Field("lost", max_length=500)


class CommandIn(Body):
    door: str = Field(max_length=64, description="Door id, or 'all'.")
    cmd: str = Field(max_length=32, description="unlock, lock, lockdown, normal, ...")
    confirm: bool = Field(False, description="Required for emergency, lockdown and 'all'.")
    seconds: float | None = Field(None, description="With unlock: how long.")
    person: str | None = Field(None, max_length=128, description="With staff_release.")


class WebhookIn(Body):
    url: str = Field(max_length=2048)
    event_types: list[str] = Field(default_factory=lambda: ["*"])


class TokenIn(Body):
    name: str = Field(max_length=64)
    role: str = Field("viewer", max_length=16)


class FingerIn(Body):
    door: str = Field(max_length=64, description="A door with a fingerprint reader, online.")
    timeout: float = Field(60.0, ge=5, le=300, description="Seconds the door waits per touch.")
