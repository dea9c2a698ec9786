"""A finger enrolment the office asked for (the signed ``enrol_finger`` command).

The capture runs on the running reader's own sensor (``FingerprintReader.session``: door
reads pause between two polls, and the enrolment finger must lift before the next read), with
the enrolment code ``edgegate enroll finger`` and the office's desk capture use
(``capture_template``: two touches merged, nothing stored on the sensor). Each prompt is
published as a step on the door's ``enrol`` topic; the template goes to the office sealed to
the command's one-time session key (contract/enrol_seal.py). The door stores nothing itself:
the office puts the credential into the master and every door, this one included, gets it
with the next credential version and its library sync writes it into the sensor.

One enrolment at a time; a second command while one runs is refused (its ack says so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from edgegate.contract import enrol_seal
from edgegate.contract.messages import EnrolFingerArgs, EnrolProgress, EnrolStep
from edgegate.hardware.fingerprint.errors import FingerprintError
from edgegate.hardware.fingerprint.reader import (
    AGAIN,
    CAPTURED,
    LIFT,
    PLACE,
    POOR,
    FingerprintReader,
    capture_template,
)

log = structlog.get_logger(__name__)

# Prompt text -> step. CAPTURED is reported once the template is sealed, with it.
_STEPS: dict[str, EnrolStep] = {PLACE: "place", LIFT: "lift", AGAIN: "again"}


def step_of(prompt: str) -> EnrolStep | None:
    if prompt.startswith(POOR):
        return "poor"
    return _STEPS.get(prompt)


class FingerEnrolment:
    def __init__(
        self,
        reader: FingerprintReader,
        model: str,
        *,
        site: str,
        door: str,
        publish: Callable[[EnrolProgress], None],
    ) -> None:
        self.reader = reader
        self.model = model
        self.site = site
        self.door = door
        self.publish = publish
        self.counters = {"started": 0, "captured": 0, "failed": 0}
        self._task: asyncio.Task[None] | None = None

    def start(self, cmd_id: str, args: EnrolFingerArgs) -> None:
        """Begin (on the loop thread); ValueError when it cannot (the command is refused)."""
        if self._task is not None and not self._task.done():
            raise ValueError("an enrolment is already running at this door")
        if not self.reader.healthy:
            raise ValueError(f"the fingerprint reader is not available ({self.reader.last_error})")
        self.counters["started"] += 1
        self._task = asyncio.get_running_loop().create_task(self._run(cmd_id, args))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _say(self, cmd_id: str, args: EnrolFingerArgs, step: EnrolStep, **more: object) -> None:
        msg = EnrolProgress(
            type="enrol_progress",
            site=self.site,
            door=self.door,
            cmd_id=cmd_id,
            person=args.person,
            step=step,
            **more,
        )
        try:
            self.publish(msg)
        except Exception:  # the broker link's problem: the enrolment goes on
            log.exception("enrol_progress_not_sent", cmd_id=cmd_id, step=step)

    async def _run(self, cmd_id: str, args: EnrolFingerArgs) -> None:
        self._say(cmd_id, args, "started")

        def prompt(text: str) -> None:
            step = step_of(text)
            if step is not None:
                self._say(cmd_id, args, step, detail=text)

        try:
            async with self.reader.session() as sensor:
                template, model = await capture_template(
                    sensor, self.model, prompt, timeout=args.timeout
                )
            aad = enrol_seal.bound_to(self.site, self.door, cmd_id, args.person, model)
            sealed = enrol_seal.seal(args.session, template, aad)
        except (FingerprintError, OSError, TimeoutError, ValueError) as exc:
            self.counters["failed"] += 1
            log.warning(
                "finger_enrolment_failed", cmd_id=cmd_id, person=args.person, error=str(exc)
            )
            self._say(cmd_id, args, "failed", detail=str(exc)[:500] or type(exc).__name__)
            return
        self.counters["captured"] += 1
        log.info("finger_enrolment_captured", cmd_id=cmd_id, person=args.person, model=model)
        self._say(cmd_id, args, "captured", detail=CAPTURED, model=model, sealed=sealed)
