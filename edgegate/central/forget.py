"""What erasing a person changes in what the office keeps: pure rules, no I/O.

The erasure service (``services/erasure.py``) reads the rows, these functions say what the
rows become, and the service writes them back:

* ``scrub_history``: the version log keeps every version's ops (the deltas a door catches up
  from), so a person's name, cards and biometric data would stay there after their removal.
  Every op that concerns the person is dropped from the old versions. A door replaying the
  scrubbed log and then the removal ends with exactly the people and credentials it would
  have had from the original log and the removal (the person is gone either way; a property
  test checks this on the door's own applier), so rewriting history changes no door.
* ``replace_strings``, ``event_mapping`` (``edgegate/contract/erasure.py``, shared with the
  door, which applies them to its own journal): archived events, alarms and command records
  are JSON; every string equal to the person's id becomes their pseudonym and each of their
  credential values becomes ``erased``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from edgegate.contract import messages as m
from edgegate.contract import ops
from edgegate.contract.erasure import ERASED, event_mapping, replace_strings

__all__ = ["ERASED", "event_mapping", "new_pseudonym", "replace_strings", "scrub_history"]
PSEUDONYM_PREFIX = "erased-"

_OP: TypeAdapter[m.Op] = TypeAdapter(m.Op)


def new_pseudonym() -> str:
    """A stable name for one erased person's events: random, so it cannot be computed back
    from the person's id (a hash of the id could); the same for all of that person's rows,
    so an investigation still sees that the events were one person's."""
    return PSEUDONYM_PREFIX + secrets.token_hex(6)


Key = tuple[str, str]


def _concerns(op: m.Op, person: str, owner: dict[Key, str]) -> bool:
    """Whether ``op`` is about ``person`` (or a credential they hold at that point)."""
    e = ops.effect(op)
    if e.target is ops.Target.PERSON:
        return e.key[0] == person
    key = (e.key[0], e.key[1])
    if isinstance(op, m.PutCredential):
        return op.credential.person == person or owner.get(key) == person
    return owner.get(key) == person


def _follow(op: m.Op, owner: dict[Key, str]) -> None:
    """Who holds which credential after ``op``, as a door applying it would leave it."""
    e = ops.effect(op)
    if e.target is ops.Target.PERSON:
        if e.action is ops.Action.REMOVE:
            for key in [k for k, p in owner.items() if p == e.key[0]]:
                del owner[key]
        return
    key = (e.key[0], e.key[1])
    if isinstance(op, m.PutCredential):
        owner[key] = op.credential.person
    elif e.action is ops.Action.REMOVE:
        owner.pop(key, None)


def _needles(text: str) -> tuple[str, ...]:
    """How a string stands in a version's JSON text (either escaping of non-ASCII)."""
    return (json.dumps(text), json.dumps(text, ensure_ascii=False))


def scrub_history(
    history: Iterable[tuple[int, list[dict[str, Any]] | str]], person: str, pseudonym: str
) -> tuple[dict[int, list[dict[str, Any]]], set[Key]]:
    """The versions (oldest first, each ``(version, ops)``, the ops decoded or as the JSON
    text the version log keeps) that change, with their new ops, and every credential
    ``person`` held at some point.

    A version given as text that contains neither the person's id nor a value they held so
    far (as JSON strings) is skipped undecoded: none of its ops can be about them or change
    who holds one of their credentials, so the log's other versions cost a substring search
    instead of a parse (most of an erasure's time on a large log).

    An op about the person (put, enable, remove of the person; put, enable, remove of a
    credential while it is theirs) is dropped; another person's ``host`` attribute naming
    them names the pseudonym instead (informational: docs/rules.md). An op that does not
    parse is kept as it is (nothing to judge it by)."""
    owner: dict[Key, str] = {}
    held: set[Key] = set()
    changed: dict[int, list[dict[str, Any]]] = {}
    needles = list(_needles(person))
    for version, given in history:
        if isinstance(given, str):
            if not any(n in given for n in needles):
                continue
            raw_ops = json.loads(given)
        else:
            raw_ops = given
        kept: list[dict[str, Any]] = []
        dirty = False
        for raw in raw_ops:
            try:
                op = _OP.validate_python(raw)
            except ValidationError:
                kept.append(raw)
                continue
            if _concerns(op, person, owner):
                e = ops.effect(op)
                if e.target is ops.Target.CREDENTIAL and (e.key[0], e.key[1]) not in held:
                    held.add((e.key[0], e.key[1]))
                    needles.extend(_needles(e.key[1]))
                dirty = True
            else:
                new = _host_renamed(raw, op, person, pseudonym)
                dirty = dirty or new is not raw
                kept.append(new)
            _follow(op, owner)
        if dirty:
            changed[version] = kept
    return changed, held


def _host_renamed(raw: dict[str, Any], op: m.Op, person: str, pseudonym: str) -> dict[str, Any]:
    if not isinstance(op, m.PutPerson) or op.person.attrs.get("host") != person:
        return raw
    p = dict(raw["person"])
    p["attrs"] = {**p.get("attrs", {}), "host": pseudonym}
    return {**raw, "person": p}
