from edgegate.core.decision import (
    CredentialRecord,
    Decision,
    DoorMode,
    DoorPolicy,
    Reason,
    RuleContext,
    decide,
)

__all__ = [
    "CredentialRecord",
    "Decision",
    "DoorMode",
    "DoorPolicy",
    "Reason",
    "RuleContext",
    "decide",
]
