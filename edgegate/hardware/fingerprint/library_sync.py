"""Library sync: make a sensor's template library match the store's finger credentials.

The store is the truth. One pass:

1. reads the finger credentials (templates unsealed) and this door's slot mapping from the
   store, and the occupied slots from the sensor (ReadIndexTable);
2. plans (``plan``, pure): delete the slots of credentials removed or disabled, of people
   removed or disabled, of templates for another sensor family, and slots nobody maps
   (an enrolment that crashed before its store commit); write (DownChar + Store) every
   active template of this door's family that is missing, into the lowest free slot, or into
   its own slot again when the template changed or the sensor lost it;
3. applies it one command group at a time, recording each slot in ``finger_slots`` right
   after the sensor confirmed it;
4. verifies every mapped slot it kept: LoadChar + UpChar, and the template read back must
   have the store's digest. A sensor module moved from another door can hold someone else's
   template in a slot this door maps to a person, which would let that someone in as that
   person: such a slot is rewritten with the store's template (emptied if the module refuses
   it), journaled as ``finger_template_mismatch``. Every pass verifies, and a pass runs at
   start and after every reopen of the sensor (a module swapped while the door runs is a
   reopen).

Templates of another family are never written: logged and counted (``wrong_model``).

Order of the mapping updates is chosen so every intermediate state denies rather than
grants: a template is stored on the sensor before its slot is mapped (a match in between is
an unknown finger), and a slot is deleted on the sensor before its mapping goes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import structlog

from edgegate.hardware.fingerprint.errors import ConfirmationError
from edgegate.hardware.fingerprint.sensor import FingerprintSensor
from edgegate.store.finger_slots import (
    FingerTemplate,
    LibraryState,
    SlotEntry,
    load_library_state,
    map_slot,
    set_digest,
    template_digest,
    unmap_slot,
)

log = structlog.get_logger(__name__)

# Char buffer used for DownChar. The door's poll uses buffer 1 too (Img2Tz(1) + Search), which
# is why a DownChar + Store pair must run under the reader's lock, never between the poll's
# Img2Tz and its Search: interleaved, the sync would Store a live finger's image into the slot,
# or the poll would search for the downloaded template and report its slot as a touch.
BUFFER = 1


@dataclass(frozen=True, slots=True)
class Write:
    value: str
    slot: int
    template: bytes
    digest: str


@dataclass
class SyncPlan:
    delete: list[tuple[int, str | None]] = field(default_factory=list)  # (slot, mapped value)
    unmap: list[str] = field(default_factory=list)  # mapping of a slot the sensor lost
    write: list[Write] = field(default_factory=list)
    wrong_model: list[str] = field(default_factory=list)
    no_template: list[str] = field(default_factory=list)
    library_full: list[str] = field(default_factory=list)
    # Slots mapped without a digest (migrated from an old store) whose template is in place:
    # record its digest, so a later change of that template is noticed.
    adopt: list[tuple[str, str]] = field(default_factory=list)


def plan(
    templates: Sequence[FingerTemplate],
    slots: Mapping[str, SlotEntry],
    used: Collection[int],
    model: str,
    capacity: int,
) -> SyncPlan:
    """What to do so the sensor holds exactly the active templates of ``model`` (pure)."""
    out = SyncPlan()
    used = set(used)
    wanted: dict[str, FingerTemplate] = {}
    for tmpl in sorted(templates, key=lambda x: x.value):
        if not tmpl.active:
            continue
        if tmpl.model != model:
            out.wrong_model.append(tmpl.value)
        else:
            wanted[tmpl.value] = tmpl
    kept: set[int] = set()  # slots that stay occupied and mapped
    to_place: list[tuple[FingerTemplate, int | None]] = []  # (template, its own slot to reuse)
    for value, entry in sorted(slots.items()):
        t = wanted.get(value)
        on_sensor = entry.slot in used and 0 <= entry.slot < capacity
        if t is None:
            if on_sensor:
                out.delete.append((entry.slot, value))
            else:
                out.unmap.append(value)
            continue
        changed = t.template is not None and entry.digest not in ("", t.digest)
        if on_sensor and not changed:
            kept.add(entry.slot)
            if entry.digest == "" and t.template is not None:
                out.adopt.append((value, t.digest))
        elif t.template is None:
            # Mapped but the sensor lost it and there is nothing to write back.
            out.no_template.append(value)
            if on_sensor:
                out.delete.append((entry.slot, value))
            else:
                out.unmap.append(value)
        else:
            own = entry.slot if 0 <= entry.slot < capacity else None
            if own is not None:
                kept.add(own)
            to_place.append((t, own))
    mapped_slots = {e.slot for e in slots.values()}
    for slot in sorted(used - mapped_slots):
        out.delete.append((slot, None))  # on the sensor, unknown to the store
    for value, t in wanted.items():
        if value in slots:
            continue
        if t.template is None:
            out.no_template.append(value)
        else:
            to_place.append((t, None))
    free = (s for s in range(capacity) if s not in kept)
    for t, own in to_place:
        assert t.template is not None
        target = own if own is not None else next(free, None)
        if target is None:
            out.library_full.append(t.value)
            if t.value in slots:
                out.unmap.append(t.value)  # its old slot is not on this sensor (found by tests)
            continue
        out.write.append(Write(t.value, target, t.template, t.digest))
    return out


class _Store(Protocol):
    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


Exclusive = Callable[[], AbstractAsyncContextManager[FingerprintSensor]]


@dataclass
class SyncCounters:
    passes: int = 0
    failed_passes: int = 0
    written: int = 0
    deleted: int = 0
    wrong_model: int = 0
    no_template: int = 0
    unseal_failed: int = 0
    write_failed: int = 0
    library_full: int = 0
    sealed_at_rest: int = 0
    verified: int = 0
    mismatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def sync_library(
    exclusive: Exclusive,
    store: _Store,
    key: bytes,
    model: str,
    counters: SyncCounters,
    *,
    reader: str = "finger",
    on_event: Callable[..., None] | None = None,
) -> SyncPlan:
    """One sync pass. ``exclusive()`` lends the sensor between two door polls; it is taken
    per command group, so a library of hundreds of templates never stops the door reading
    for more than one DownChar + Store (about 0.1 s at 57600 baud)."""
    state: LibraryState = await store.call(load_library_state, key)
    counters.sealed_at_rest += state.sealed_now
    counters.unseal_failed += state.unseal_failed
    async with exclusive() as sensor:
        used = await sensor.used_slots()
        capacity = sensor.capacity or 256
    p = plan(state.templates, state.slots, used, model, capacity)
    for value in p.wrong_model:
        log.warning("finger_template_wrong_model", reader=reader, value=value, model=model)
    for value in p.no_template:
        log.warning("finger_template_missing", reader=reader, value=value)
    for value in p.library_full:
        log.error("finger_library_full", reader=reader, value=value, capacity=capacity)
    counters.wrong_model += len(p.wrong_model)
    counters.no_template += len(p.no_template)
    counters.library_full += len(p.library_full)
    for value in p.unmap:
        await store.call(unmap_slot, value)
    for value, digest in p.adopt:
        await store.call(set_digest, value, digest)
    for slot, mapped in p.delete:
        async with exclusive() as sensor:
            await sensor.delete(slot, 1)
        counters.deleted += 1
        log.info("finger_slot_deleted", reader=reader, slot=slot, value=mapped)
        if mapped is not None:
            await store.call(unmap_slot, mapped)
    for w in p.write:
        try:
            async with exclusive() as sensor:
                await sensor.download_template(BUFFER, w.template)
                await sensor.store(w.slot, BUFFER)
        except ConfirmationError as exc:
            # The module refused this template (corrupt, or not its format): skip it, go on.
            counters.write_failed += 1
            log.error("finger_template_rejected", reader=reader, value=w.value, error=str(exc))
            continue
        await store.call(map_slot, w.value, w.slot, w.digest)
        counters.written += 1
        log.info("finger_template_written", reader=reader, slot=w.slot, value=w.value)
    await _verify_kept(exclusive, store, key, model, counters, state, p, used, reader, on_event)
    counters.passes += 1
    log.info(
        "finger_library_synced",
        reader=reader,
        written=len(p.write),
        deleted=len(p.delete),
        wrong_model=len(p.wrong_model),
    )
    return p


async def _verify_kept(
    exclusive: Exclusive,
    store: _Store,
    key: bytes,
    model: str,
    counters: SyncCounters,
    state: LibraryState,
    p: SyncPlan,
    used: Collection[int],
    reader: str,
    on_event: Callable[..., None] | None,
) -> None:
    """Step 4 (module docstring): the template in each kept slot is the store's."""
    rewritten = {w.value for w in p.write}
    gone = {v for _, v in p.delete if v is not None} | set(p.unmap)
    for t in state.templates:
        entry = state.slots.get(t.value)
        if (
            entry is None
            or not t.active
            or t.model != model
            or t.template is None
            or t.value in rewritten
            or t.value in gone
            or entry.slot not in used
        ):
            continue
        async with exclusive() as sensor:
            await sensor.load(entry.slot, BUFFER)
            found = await sensor.upload_template(BUFFER)
        counters.verified += 1
        if template_digest(key, found) == t.digest:
            continue
        counters.mismatched += 1
        action = "rewritten"
        try:
            async with exclusive() as sensor:
                await sensor.download_template(BUFFER, t.template)
                await sensor.store(entry.slot, BUFFER)
        except ConfirmationError:
            async with exclusive() as sensor:
                await sensor.delete(entry.slot, 1)
            await store.call(unmap_slot, t.value)
            action = "emptied"
        else:
            await store.call(map_slot, t.value, entry.slot, t.digest)
        log.warning(
            "finger_template_mismatch", reader=reader, slot=entry.slot, value=t.value, action=action
        )
        if on_event is not None:
            on_event("finger_template_mismatch", slot=entry.slot, value=t.value, action=action)


__all__ = ["SyncCounters", "SyncPlan", "Write", "plan", "sync_library"]
