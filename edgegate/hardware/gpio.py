"""The door's outputs through gpiozero: lock relay, green and red LEDs, buzzer.

Pins come from a gpiozero pin factory chosen by name (``lgpio`` on a Pi, ``mock`` in tests and
the demo), so the same code drives real relays and gpiozero's MockFactory pins. When the lock
releases and relocks is decided by the door's state machine alone (edgegate/core/door_state.py),
which calls ``unlock`` and ``relock``; the timed feedback here (LED and beep lengths) runs as
event-loop timers rather than gpiozero's background threads, which keeps the order of actions
deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib.metadata import entry_points

import structlog
from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from edgegate.config.models import GpioConfig
from edgegate.core.feedback import SIGNALS, Outcome

log = structlog.get_logger(__name__)

OutputListener = Callable[[str, bool], None]


def make_pin_factory(name: str) -> Factory:
    """Build a gpiozero pin factory from its registered name (entry point group)."""
    if name == "mock":
        return MockFactory()
    found = entry_points(group="gpiozero_pin_factories", name=name)
    if not found:
        known = sorted(e.name for e in entry_points(group="gpiozero_pin_factories"))
        raise ValueError(f"unknown gpiozero pin factory {name!r}; known: {', '.join(known)}")
    return next(iter(found)).load()()


class DoorOutputs:
    """Lock relay and feedback. The relay energised means unlocked; off means locked, which is
    also the state on start-up and on a normal stop (fail-secure)."""

    def __init__(self, cfg: GpioConfig, factory: Factory) -> None:
        self.cfg = cfg
        self.factory = factory
        self.lock = DigitalOutputDevice(
            cfg.lock, active_high=cfg.lock_active_high, initial_value=False, pin_factory=factory
        )
        self.green = LED(cfg.green_led, pin_factory=factory) if cfg.green_led is not None else None
        self.red = LED(cfg.red_led, pin_factory=factory) if cfg.red_led is not None else None
        self.buzzer = Buzzer(cfg.buzzer, pin_factory=factory) if cfg.buzzer is not None else None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._listeners: list[OutputListener] = []
        self.final_state: dict[str, bool] | None = None

    def add_listener(self, fn: OutputListener) -> None:
        self._listeners.append(fn)

    @property
    def unlocked(self) -> bool:
        return bool(self.lock.value)

    def _set(self, name: str, device: DigitalOutputDevice | None, on: bool) -> None:
        if device is None or bool(device.value) == on:
            return
        device.on() if on else device.off()
        for fn in self._listeners:
            fn(name, on)

    def _after(self, key: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, fn)

    def _cancel(self, key: str) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

    def unlock(self) -> None:
        """Release the lock until ``relock`` (the state machine times every release)."""
        self._set("lock", self.lock, True)

    def relock(self) -> None:
        self._set("lock", self.lock, False)
        self._set("green_led", self.green, False)

    def signal_grant(self, seconds: float) -> None:
        self._cancel("red")
        self._set("red_led", self.red, False)
        self._set("green_led", self.green, True)
        self._beep(self.cfg.grant_beep_seconds)
        self._after("green", seconds, lambda: self._set("green_led", self.green, False))

    def signal_deny(self) -> None:
        self._set("red_led", self.red, True)
        self._beep(self.cfg.deny_beep_seconds)
        self._after("red", self.cfg.deny_led_seconds, lambda: self._set("red_led", self.red, False))

    def signal_retry(self) -> None:
        """Two short beeps: present again (poor fingerprint capture, face not yet matched)."""
        self._beep(self.cfg.grant_beep_seconds)
        self._after(
            "beep2",
            self.cfg.grant_beep_seconds * 3,
            lambda: self._beep(self.cfg.grant_beep_seconds),
        )

    def signal(self, outcome: Outcome) -> None:
        """A refusal's outcome class on the door's own LEDs and buzzer (the table in
        docs/rules.md, "Telling people why"): red, or amber as both LEDs at once, for
        ``deny_led_seconds``; beeps of ``deny_beep_seconds`` with red, of
        ``grant_beep_seconds`` with amber."""
        sig = SIGNALS[outcome]
        if sig.led == "green":
            self.signal_grant(self.cfg.deny_led_seconds)
            return
        red, green = True, sig.led == "amber"
        self._set("red_led", self.red, red)
        if green:
            self._set("green_led", self.green, True)
        self._after("red", self.cfg.deny_led_seconds, lambda: self._leds_off(green))
        beep = self.cfg.deny_beep_seconds if sig.led == "red" else self.cfg.grant_beep_seconds
        self._beeps(sig.beeps, beep)

    def _leds_off(self, green: bool) -> None:
        self._set("red_led", self.red, False)
        if green and not self.unlocked:
            self._set("green_led", self.green, False)

    def _beeps(self, n: int, seconds: float) -> None:
        self._beep(seconds)
        for i in range(1, n):
            self._after(f"beep{i + 1}", seconds * 2.5 * i, lambda: self._beep(seconds))

    def _beep(self, seconds: float) -> None:
        if self.buzzer is None or seconds <= 0:
            return
        self._set("buzzer", self.buzzer, True)
        self._after("buzzer", seconds, lambda: self._set("buzzer", self.buzzer, False))

    def deny(self) -> None:
        self.signal_deny()

    def safe_state(self) -> None:
        """Locked, LEDs and buzzer off, no pending timers: the state to stop in."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._set("lock", self.lock, False)
        for name, dev in (
            ("green_led", self.green),
            ("red_led", self.red),
            ("buzzer", self.buzzer),
        ):
            self._set(name, dev, False)

    def state(self) -> dict[str, bool]:
        return {
            "unlocked": self.unlocked,
            "green_led": bool(self.green.value) if self.green else False,
            "red_led": bool(self.red.value) if self.red else False,
            "buzzer": bool(self.buzzer.value) if self.buzzer else False,
        }

    def close(self) -> None:
        self.final_state = self.state()
        for dev in (self.lock, self.green, self.red, self.buzzer):
            if dev is not None:
                dev.close()
