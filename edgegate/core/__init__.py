from edgegate.core.decision import CredentialRecord, Decision, Reason, decide

__all__ = ["CredentialRecord", "Decision", "Reason", "decide"]
