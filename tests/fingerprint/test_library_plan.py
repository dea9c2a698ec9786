"""library_sync.plan: applied to any sensor and mapping, it leaves exactly the active templates
of the door's family on the sensor, each in one mapped slot, and rewrites nothing unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.hardware.fingerprint.library_sync import SyncPlan, plan
from edgegate.store.finger_slots import FingerTemplate, SlotEntry

MODEL = "r307"
VALUES = [f"p{i}.x" for i in range(8)]


@st.composite
def scenarios(draw):
    capacity = draw(st.integers(1, 10))
    templates = []
    for value in draw(st.lists(st.sampled_from(VALUES), unique=True)):
        has = draw(st.booleans())
        templates.append(
            FingerTemplate(
                value=value,
                person_id=value.split(".")[0],
                active=draw(st.booleans()),
                model=draw(st.sampled_from([MODEL, "r503", None])),
                template=b"T" + value.encode() if has else None,
                digest=draw(st.sampled_from(["d1", "d2"])) if has else "",
            )
        )
    mapped_values = draw(st.lists(st.sampled_from(VALUES), unique=True, max_size=capacity + 2))
    slots_for = draw(
        st.lists(
            st.integers(0, capacity + 1),
            min_size=len(mapped_values),
            max_size=len(mapped_values),
            unique=True,
        )
    )
    mapping = {
        v: SlotEntry(v, s, draw(st.sampled_from(["", "d1", "d2"])))
        for v, s in zip(mapped_values, slots_for, strict=False)
    }
    used = draw(st.sets(st.integers(0, capacity - 1)))
    return templates, mapping, used, capacity


def apply(p: SyncPlan, mapping: dict[str, SlotEntry], used: set[int]):
    sensor = set(used)
    slots = {v: e.slot for v, e in mapping.items()}
    for value in p.unmap:
        slots.pop(value)
    for slot, value in p.delete:
        sensor.discard(slot)
        if value is not None:
            slots.pop(value)
    for w in p.write:
        sensor.add(w.slot)
        slots = {v: s for v, s in slots.items() if s != w.slot and v != w.value}
        slots[w.value] = w.slot
    return sensor, slots


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_plan_leaves_sensor_equal_to_the_active_templates(scenario):
    templates, mapping, used, capacity = scenario
    p = plan(templates, mapping, used, MODEL, capacity)
    sensor, slots = apply(p, mapping, used)

    # Every occupied slot is mapped and every mapping points at an occupied slot.
    assert set(slots.values()) == sensor
    assert all(0 <= s < capacity for s in sensor)
    wanted = {t.value: t for t in templates if t.active and t.model == MODEL}
    # Nothing inactive or of another family stays; every wanted template with bytes is there
    # unless the library is full.
    assert set(slots) <= set(wanted)
    for value, t in wanted.items():
        if t.template is not None and value not in p.library_full:
            assert value in slots
    assert set(p.wrong_model) == {t.value for t in templates if t.active and t.model != MODEL}
    # Writes only for wanted templates, into distinct slots.
    assert {w.value for w in p.write} <= set(wanted)
    assert len({w.slot for w in p.write}) == len(p.write)
    # Nothing already in place with the same template is written again.
    for w in p.write:
        entry = mapping.get(w.value)
        if entry is not None and entry.slot in used and entry.slot < capacity:
            assert entry.digest not in ("", w.digest)


def test_changed_template_is_rewritten_into_its_own_slot():
    t = FingerTemplate("a.1", "a", True, MODEL, b"new", "d2")
    p = plan([t], {"a.1": SlotEntry("a.1", 7, "d1")}, {7}, MODEL, 10)
    assert [(w.value, w.slot) for w in p.write] == [("a.1", 7)] and p.delete == []
    p = plan([t], {"a.1": SlotEntry("a.1", 7, "d2")}, {7}, MODEL, 10)
    assert p.write == [] and p.delete == [] and p.adopt == []
    # Mapped by the migration (no digest): kept, and its digest recorded from now on.
    p = plan([t], {"a.1": SlotEntry("a.1", 7, "")}, {7}, MODEL, 10)
    assert p.write == [] and p.adopt == [("a.1", "d2")]


def test_full_library_is_reported_not_overwritten():
    ts = [FingerTemplate(f"v{i}", "p", True, MODEL, b"t", "d") for i in range(3)]
    p = plan(ts, {"v0": SlotEntry("v0", 0, "d"), "v1": SlotEntry("v1", 1, "d")}, {0, 1}, MODEL, 2)
    assert p.write == [] and p.library_full == ["v2"]
