"""What each credential op means: the one semantics the office's master store and a door's
store both follow when they apply ``CredentialUpdate.ops``.

``effect(op)`` is pure: it says which row an op touches and what it does to it. The two
appliers (``edgegate/central/store.py`` on the master, ``edgegate/sync/credentials_apply.py``
on a door) dispatch on it instead of each reading the op types their own way.

The rules (docs/mqtt.md, credential updates):

- Ops are absolute, never relative: ``put`` writes every field of its row, ``set_enabled``
  sets the flag, ``remove`` deletes. Applying an op twice leaves what applying it once left,
  so a door may safely re-apply ops it already has (an update overlapping its version).
- Removing a person removes that person's credentials with them.
- A credential names its owner, who must exist (earlier in the same update, or already).
- Where the two sides differ, they differ on purpose, by :class:`Missing`: the office checks
  a change before it becomes a version (an op on a row that does not exist, or a credential
  put for someone other than its owner, is a mistake and is refused); a door applies what
  the office signed, so there the same op is already done (a missing row) or the office's
  word (the new owner).
- One op is never refused for a missing row, on either side: an erasure's removal
  (``remove_person`` with ``erase``) of someone the master no longer holds (removed earlier,
  then erased). Their credentials are gone, but the doors' journals still name them, and the
  removal is what tells a door to rewrite them out (``needs_row``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from edgegate.contract import messages as m


class Target(StrEnum):
    PERSON = "person"
    CREDENTIAL = "credential"


class Action(StrEnum):
    PUT = "put"  # insert, or replace every field of the existing row
    SET_ENABLED = "set_enabled"
    REMOVE = "remove"  # a person's credentials go with them


class Missing(StrEnum):
    """What an applier does with an op whose row is not there (or, for a put credential,
    belongs to someone else)."""

    REFUSE = "refuse"  # the office: the change is wrong, nothing of it is stored
    IGNORE = "ignore"  # a door: already done, or the office's word


@dataclass(frozen=True, slots=True)
class Effect:
    """The row an op touches and what it does to it.

    ``key`` is the row's key: ``(person_id,)`` or ``(kind, value)``. ``enabled`` is the flag a
    ``SET_ENABLED`` writes. ``texts`` are the op's key and free-text fields (for checks that
    apply to every text the op would store).
    """

    target: Target
    action: Action
    key: tuple[str, ...]
    enabled: bool | None = None
    texts: tuple[str, ...] = ()


def _put_person(op: m.PutPerson) -> Effect:
    p = op.person
    return Effect(Target.PERSON, Action.PUT, (p.id,), texts=(p.id, p.name))


def _remove_person(op: m.RemovePerson) -> Effect:
    return Effect(Target.PERSON, Action.REMOVE, (op.id,), texts=(op.id,))


def _set_person_enabled(op: m.SetPersonEnabled) -> Effect:
    return Effect(Target.PERSON, Action.SET_ENABLED, (op.id,), op.enabled, texts=(op.id,))


def _put_credential(op: m.PutCredential) -> Effect:
    c = op.credential
    return Effect(
        Target.CREDENTIAL,
        Action.PUT,
        (c.kind, c.value),
        texts=(c.kind, c.value, c.person, c.label),
    )


def _set_credential_enabled(op: m.SetCredentialEnabled) -> Effect:
    key = (op.kind, op.value)
    return Effect(Target.CREDENTIAL, Action.SET_ENABLED, key, op.enabled, texts=key)


def _remove_credential(op: m.RemoveCredential) -> Effect:
    key = (op.kind, op.value)
    return Effect(Target.CREDENTIAL, Action.REMOVE, key, texts=key)


# Dispatch table: one entry per op of the contract (a test checks none is missing).
_EFFECTS: dict[type[m.Msg], Callable[..., Effect]] = {
    m.PutPerson: _put_person,
    m.RemovePerson: _remove_person,
    m.SetPersonEnabled: _set_person_enabled,
    m.PutCredential: _put_credential,
    m.SetCredentialEnabled: _set_credential_enabled,
    m.RemoveCredential: _remove_credential,
}


def needs_row(op: m.Op) -> bool:
    """Whether applying ``op`` where its row is missing is a mistake (``Missing.REFUSE`` on
    the office). Not for an erasure's removal: a person removed earlier and erased later must
    still be named to every door, whose journal keeps their id until it is rewritten."""
    return not (isinstance(op, m.RemovePerson) and op.erase)


def effect(op: m.Op) -> Effect:
    """What ``op`` does, by the rules above."""
    return _EFFECTS[type(op)](op)
