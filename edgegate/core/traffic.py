"""Which journaled door events are traffic, and in which counter (``edgegate stats``, the
telemetry ``today`` figures). Pure: one rule for every path an event takes to the journal."""

from __future__ import annotations

from collections.abc import Mapping

# The traffic table's columns (edgegate/store/rules_state.py).
GRANTED, DENIED, PASSAGES, EXITS = "granted", "denied", "passages", "exits"

_BY_TYPE = {
    "access_granted": GRANTED,
    "access_denied": DENIED,
    "passage": PASSAGES,
    "exit_request": EXITS,
}
# Releases whose door opening is a person's passage. An exit release is counted once, as the
# exit; the opening it leads to is not a second passage.
_PASSAGE_CAUSES = frozenset({"grant", "attended"})


def traffic_column(type_: str, fields: Mapping[str, object], *, turnstile: bool) -> str | None:
    """The counter an event adds one to, or None. On a turnstile the gate's own ``passage``
    input counts passages, so the door contact does not count them again."""
    column = _BY_TYPE.get(type_)
    if column is not None:
        return column
    if type_ == "door_opened" and not turnstile and fields.get("cause") in _PASSAGE_CAUSES:
        return PASSAGES
    return None
