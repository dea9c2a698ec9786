"""Who pressed the staff release button: the staff card tapped just before it.

A staff member taps their own card, then presses the door's ``[gpio] staff_release`` button
to let a waiting person through. The button alone names nobody; this remembers the last card
read (granted or not) of a person in one of ``[rules] staff_groups`` and, when the button is
pressed within ``[rules] staff_card_seconds`` of it, the ``staff_release`` event names them.

The group lookup is a hop to the store thread made when the card is read (the event is
already committed by then); the button comes seconds later, so it only reads what is here.
"""

from __future__ import annotations

from collections.abc import Callable

from edgegate.config.models import RulesConfig
from edgegate.daemon.door import Door
from edgegate.store.credentials import get_person_attrs
from edgegate.store.journal import Event

InputHandler = Callable[[str, bool], None]
_READS = ("access_granted", "access_denied")


class StaffCardMemory:
    def __init__(self, door: Door, rules: RulesConfig) -> None:
        self.door = door
        self.groups = frozenset(rules.staff_groups)
        self.seconds = rules.staff_card_seconds
        self.last: tuple[str, float] | None = None  # (person, door monotonic time when read)

    def on_event(self, event: Event) -> None:
        """Door listener (on the loop, after commit)."""
        person = event.payload.get("person")
        if event.type in _READS and event.payload.get("kind") == "card" and person:
            self.door.spawn(self._check(str(person), self.door.monotonic()))

    async def _check(self, person: str, at: float) -> None:
        attrs = await self.door.store.call(get_person_attrs, person) or {}
        groups = attrs.get("groups")
        staff = isinstance(groups, list) and self.groups.intersection(map(str, groups))
        if staff and (self.last is None or self.last[1] <= at):
            self.last = (person, at)

    def staff_at(self, now: float) -> str | None:
        if self.last is None or self.seconds <= 0:
            return None
        person, at = self.last
        return person if 0 <= now - at <= self.seconds else None

    def wrap(self, handler: InputHandler) -> InputHandler:
        """The inputs' handler, with the staff release button naming the staff member."""

        def on_input(name: str, active: bool) -> None:
            staff = self.staff_at(self.door.monotonic()) if name == "staff_release" else None
            if staff is not None and active:
                self.last = None  # one tap, one release
                self.door.staff_release(staff, "staff_release")
            else:
                handler(name, active)

        return on_input
