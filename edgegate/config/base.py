"""Base pieces shared by the config models: strict models, id patterns, pins."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Pin = Annotated[
    int | str,
    Field(description="BCM GPIO number (e.g. 17) or a gpiozero pin name (e.g. 'GPIO17')."),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
