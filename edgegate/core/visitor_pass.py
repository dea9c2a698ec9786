"""The decision on a visitor QR pass (``kind: "qr"``), pure like the rest of the core.

A pass is verified before it gets here (its signature, by ``edgegate.contract.visitor_pass``):
this decides whether a genuine pass opens this door now. It goes through the same ``decide``
as a card, as a credential whose window is the pass's and whose zones are the pass's, so
every rule of the door (lockout, lockdown, zone, schedule, exit hold, anti-passback) applies
to it in the same order. Two checks only a pass has come on top: a pass the office revoked
(pushed as a disabled ``qr`` credential) and a single-entry pass already used here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgegate.core.decision import (
    CredentialRecord,
    Decision,
    Reason,
    RuleContext,
    decide,
)
from edgegate.core.reads import CredentialRead


@dataclass(frozen=True, slots=True)
class VisitorPass:
    """A verified pass: ids, zones, window (UNIX seconds, end exclusive), single entry."""

    pass_id: str
    visit_id: str
    zones: tuple[str, ...]
    not_before: float
    not_after: float
    single: bool

    def used_up_by(self, direction: str) -> bool:
        """Only an entry uses up a single-entry pass: the visitor must still be able to
        leave."""
        return self.single and direction == "in"


def decide_pass(
    read: CredentialRead,
    visitor_pass: VisitorPass | None,
    now: float,
    *,
    revoked: bool = False,
    used: bool = False,
    attrs: Mapping[str, object] | None = None,
    context: RuleContext | None = None,
) -> Decision:
    """``visitor_pass`` None: the token was not a pass of a trusted office (``forged``).
    ``revoked``: the office disabled the pass or its visit. ``used``: this door already let
    the pass in once. ``attrs``: the visit's rule attributes as the office pushed them
    (groups, host, exit hold ``settled``), if this door has them; the zones are the pass's."""
    if visitor_pass is None:
        if context is not None and context.reader_locked_until is not None:
            return Decision(False, Reason.LOCKOUT)
        return Decision(False, Reason.FORGED)
    record = CredentialRecord(
        kind="qr",
        value=visitor_pass.pass_id,
        person_id=visitor_pass.visit_id,
        enabled=not revoked,
        valid_from=visitor_pass.not_before,
        valid_until=visitor_pass.not_after,
        attrs={**(attrs or {}), "zones": list(visitor_pass.zones)},
    )
    decision = decide(read, record, now, context=context)
    if decision.granted and used and visitor_pass.used_up_by(str(read.direction)):
        return Decision(False, Reason.REPLAYED, decision.person_id)
    return decision
