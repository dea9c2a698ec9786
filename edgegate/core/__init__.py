"""The door's domain: pure values and rules, no IO and no clock of their own.

Nothing here imports another edgegate layer (checked by tests/test_layers.py): the daemon,
the sync layer, the readers and the office build on these values, never the other way round.
"""

from edgegate.core.assist import AssistTracker
from edgegate.core.decision import (
    CredentialRecord,
    Decision,
    DoorMode,
    DoorPolicy,
    Reason,
    RuleContext,
    decide,
)
from edgegate.core.reads import CredentialKind, CredentialRead, Direction

__all__ = [
    "AssistTracker",
    "CredentialKind",
    "CredentialRead",
    "CredentialRecord",
    "Decision",
    "Direction",
    "DoorMode",
    "DoorPolicy",
    "Reason",
    "RuleContext",
    "decide",
]
