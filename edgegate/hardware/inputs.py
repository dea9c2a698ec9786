"""The door's inputs through gpiozero: contact, exit button, fire alarm, passage, obstruction,
staff release and fire reset. Every input has the internal pull-up. A normally-open input
(the default) is active while its contact pulls the pin to ground, as PRODUCT.md describes; a
``normally_closed`` one is active while its contact is OPEN (the pin pulled high), so a cut
wire reads as active: the fail-safe wiring for the fire input and the obstruction sensor.

gpiozero calls ``when_activated`` / ``when_deactivated`` in ITS OWN thread (lgpio's callback
thread on a Pi; with MockFactory, whatever thread drove the pin). Nothing in the daemon is
thread-safe: the rules state, the outputs' asyncio timers and the store futures all belong to
the event loop. So a callback never touches them; it only hands ``(name, active)`` to the loop
with ``loop.call_soon_threadsafe``, which wakes the loop through its self-pipe at once. The
hop costs tens of microseconds (bench/fire_release.py) and keeps every state change in one
thread, so a fire release can never race a relock timer half-way through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import get_args

import structlog
from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from edgegate.config.models import GpioConfig, InputName

log = structlog.get_logger(__name__)

# Config keys of the inputs, in the order they are opened (the config's one list).
INPUT_NAMES: tuple[str, ...] = get_args(InputName)
# Inputs whose level (not just an edge) matters at start-up: an active fire alarm or an
# obstruction must act even if it became active while the daemon was down.
LEVEL_INPUTS = ("fire_alarm", "obstruction")

InputHandler = Callable[[str, bool], None]


class DoorInputs:
    def __init__(self, cfg: GpioConfig, factory: Factory, handler: InputHandler) -> None:
        self.cfg = cfg
        self.factory = factory
        self.handler = handler
        # DigitalInputDevice rather than Button: Button starts a hold-timer thread per input that
        # we do not use and that takes ~0.2 s to join on close.
        self.buttons: dict[str, DigitalInputDevice] = {}
        self.counters: dict[str, int] = {}
        self.normally_closed = frozenset(cfg.normally_closed)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the configured inputs; call on the loop thread."""
        for name in INPUT_NAMES:
            pin = getattr(self.cfg, name)
            if pin is None:
                continue
            button = DigitalInputDevice(
                pin,
                pull_up=True,
                bounce_time=self.cfg.input_bounce_seconds,
                pin_factory=self.factory,
            )
            # Default arguments bind name now; the lambdas run in gpiozero's thread and do
            # nothing but schedule the handler on the loop (see the module docstring).
            # gpiozero's "active" is the pin pulled low; a normally-closed input means the
            # opposite, so its edges swap.
            low = name not in self.normally_closed
            button.when_activated = lambda n=name, a=low: loop.call_soon_threadsafe(
                self._fire, n, a
            )
            button.when_deactivated = lambda n=name, a=not low: loop.call_soon_threadsafe(
                self._fire, n, a
            )
            self.buttons[name] = button
            self.counters[name] = 0
            log.info(
                "input_opened",
                input=name,
                pin=str(pin),
                contact="normally_open" if low else "normally_closed",
            )
        for name in LEVEL_INPUTS:
            if self.is_active(name):
                self._fire(name, True)

    def _fire(self, name: str, active: bool) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
        try:
            self.handler(name, active)
        except Exception:
            # An input handler must never kill the loop's callback machinery.
            log.exception("input_handler_failed", input=name, active=active)

    def is_active(self, name: str) -> bool | None:
        """Whether the input is active (its contact's meaning, whatever the wiring)."""
        button = self.buttons.get(name)
        if button is None:
            return None
        return bool(button.is_active) != (name in self.normally_closed)

    def close(self) -> None:
        for button in self.buttons.values():
            button.close()
        self.buttons.clear()
