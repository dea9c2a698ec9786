"""Config of the rules across doors and by the clock (docs/rules.md, issue 20): unlock
schedules and postures, area peers, interlock, the offline policy and what readers tell
people. Kept apart from ``models.py`` so each table stays readable."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgegate.config.base import ID_PATTERN, StrictModel

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_END = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


class PostureConfig(StrictModel):
    posture: Literal["free", "card", "card_pin", "lockdown"] = Field(
        description="The door's posture in this window: free (lock held released, anyone "
        "passes, reads still journaled), card (the normal posture), card_pin (a card must be "
        "followed by its holder's PIN) or lockdown (only [rules] lockdown_allowed_groups)."
    )
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        description="Days of the week the window applies on."
    )
    start: str = Field(description="Start time, HH:MM local.", pattern=_HHMM)
    end: str = Field(
        description="End time (exclusive), HH:MM local, after start; 24:00 for midnight.",
        pattern=_END,
    )
    holidays: Literal["skip", "also", "only"] = Field(
        "skip",
        description="On the top-level holidays: skip the window (default), apply it also, or "
        "apply it only on holidays (e.g. a holiday lockdown).",
    )
    first_to_arrive: list[str] = Field(
        default_factory=list,
        description="With posture = 'free': the window opens only after a person of one of "
        "these groups is granted during it (empty: it opens at its start).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PostureConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if self.first_to_arrive and self.posture != "free":
            raise ValueError("first_to_arrive applies only to posture = 'free'")
        return self


class AreaConfig(StrictModel):
    peers: list[str] = Field(
        default_factory=list,
        description="Door ids of the same site and area whose grants this door applies to "
        "its own presence (anti-passback and occupancy across the area), heard over the "
        "broker. Each peer lists this door too.",
    )
    reset_after_emergency: bool = Field(
        False,
        description="Forget everyone's presence in the area when an emergency ends (its "
        "reset), so people who left through released doors are not refused as passback when "
        "they come back. Otherwise the office sends the signed reset_presence command.",
    )


class InterlockConfig(StrictModel):
    peer: str = Field(
        description="Door id (same site) of the other door of the mantrap: this door releases "
        "only while that door is closed and locked.",
        pattern=ID_PATTERN,
    )


class OfflineConfig(StrictModel):
    after_minutes: float = Field(
        0.0,
        ge=0,
        description="Minutes without hearing the office after which the door is 'offline too "
        "long' (0: never). Shown in state and telemetry.",
    )
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="Groups still granted while offline too long (empty: everyone keeps "
        "passing, the door only reports it); others are denied with reason 'offline'.",
    )


class FeedbackConfig(StrictModel):
    language: Literal["en", "fr", "de"] = Field(
        "en", description="Language of the texts shown on readers with a display (OSDP)."
    )
