"""The messages of the MQTT contract (docs/mqtt.md), validated strictly.

Signed messages (central office -> door) are checked by ``signing.Verifier`` first and then
parsed here with ``parse_signed``; anything that does not fit its model exactly (unknown keys,
wrong types, impossible values) is refused with reason ``malformed``. Times in messages are
RFC 3339 strings; people and credential validity windows are UNIX seconds (as in the store).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from edgegate.contract.signing import RejectedMessage, Verifier

ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@:-]{1,128}$")]
SITE_OR_DOOR = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# A door's journal epoch (edgegate/store/epoch.py): '' for a store from before epochs.
EPOCH_PATTERN = r"^[A-Za-z0-9_-]{0,64}$"
EPOCH = Annotated[str, Field(pattern=EPOCH_PATTERN)]
PROTOCOL: Final = 1
# "qr": a visitor QR pass (value: its pass id, person: its visit), pushed so the office can
# revoke it (enabled false); a door decides a pass from its signed token (visitor_pass.py),
# this row only adds the revocation.
CredentialKindName = Literal["card", "finger", "face", "pin", "qr"]


class Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonMsg(Msg):
    id: ID = Field(description="Person id, stable across the site.")
    name: str = Field("", max_length=200, description="Display name.")
    enabled: bool = Field(True, description="False blocks every credential of the person.")
    valid_from: float | None = Field(None, description="UNIX seconds; None: no start.")
    valid_until: float | None = Field(None, description="UNIX seconds; None: no end.")
    attrs: dict[str, Any] = Field(
        default_factory=dict, description="Rule attributes: groups, zones, host, settled..."
    )


class CredentialMsg(Msg):
    kind: CredentialKindName = Field(description="Credential kind.")
    value: str = Field(min_length=1, max_length=128, description="Card UID, template id...")
    person: ID = Field(description="Owner; must exist (same message or already on the door).")
    enabled: bool = Field(True, description="False: revoked (a lost card).")
    valid_from: float | None = Field(None, description="UNIX seconds; None: no start.")
    valid_until: float | None = Field(None, description="UNIX seconds; None: no end.")
    label: str = Field("", max_length=200, description="Free text; 'model=r307' on templates.")
    data: str | None = Field(
        None,
        max_length=1_000_000,
        description="Base64 biometric template or encodings (never images); sealed at rest "
        "on the door.",
    )


class PutPerson(Msg):
    op: Literal["put_person"]
    person: PersonMsg


class RemovePerson(Msg):
    op: Literal["remove_person"]
    id: ID
    erase: bool = Field(
        False,
        description="An erasure (the right to erasure, docs/central.md): the door also "
        "rewrites the person out of its own journal. Sent only when true, so a door that "
        "predates it refuses only erasures.",
    )


class SetPersonEnabled(Msg):
    op: Literal["set_person_enabled"]
    id: ID
    enabled: bool


class PutCredential(Msg):
    op: Literal["put_credential"]
    credential: CredentialMsg


class SetCredentialEnabled(Msg):
    op: Literal["set_credential_enabled"]
    kind: CredentialKindName
    value: str = Field(min_length=1, max_length=128)
    enabled: bool


class RemoveCredential(Msg):
    op: Literal["remove_credential"]
    kind: CredentialKindName
    value: str = Field(min_length=1, max_length=128)


Op = Annotated[
    PutPerson
    | RemovePerson
    | SetPersonEnabled
    | PutCredential
    | SetCredentialEnabled
    | RemoveCredential,
    Field(discriminator="op"),
]


class CredentialUpdate(Msg):
    """``edgegate/<site>/credentials``: version ``version`` applies on top of ``base`` only."""

    type: Literal["credentials"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    version: int = Field(ge=1)
    base: int = Field(ge=0)
    issued: AwareDatetime
    ops: list[Op] = Field(max_length=10_000)

    @model_validator(mode="after")
    def _base_before_version(self) -> CredentialUpdate:
        if self.base >= self.version:
            raise ValueError("base must be lower than version")
        return self


# Erased person ids one snapshot chunk carries at most (128-character ids: 1.3 MB at worst).
ERASED_PER_CHUNK: Final = 10_000


class SnapshotChunk(Msg):
    """``.../credentials/snapshot``: chunk ``chunk`` of ``chunks`` of one snapshot.

    The door stages chunks and swaps the whole set in only when all ``chunks`` of the same
    ``snapshot`` id have arrived; until then the old set serves.
    """

    type: Literal["snapshot"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR
    snapshot: ID
    version: int = Field(ge=0)
    chunk: int = Field(ge=0)
    chunks: int = Field(ge=1, le=100_000)
    issued: AwareDatetime
    people: list[PersonMsg] = Field(max_length=50_000)
    credentials: list[CredentialMsg] = Field(max_length=200_000)
    replace_local: bool = Field(
        False,
        description="The office says so explicitly: this snapshot may replace the people a "
        "door enrolled on its own before it joined (an operator imported or discarded them). "
        "Without it a door at version 0 with local people refuses the snapshot.",
    )
    erased: list[ID] = Field(
        default_factory=list,
        max_length=ERASED_PER_CHUNK,
        description="People erased (``remove_person`` with ``erase``) after the version the "
        "door asked with (its ``have``; every erasure of the version log when it asked with "
        "0). The door rewrites them out of its journal in the swap's transaction, as the "
        "delta it missed would have. Spread over the chunks (the door takes the union); sent "
        "only when not empty, so a door that predates it refuses only such snapshots.",
    )

    @model_validator(mode="after")
    def _chunk_in_range(self) -> SnapshotChunk:
        if self.chunk >= self.chunks:
            raise ValueError("chunk must be lower than chunks")
        return self


CommandName = Literal[
    "unlock",
    "lock",
    "lockdown",
    "normal",
    "emergency",
    "attended",
    "sync",
    "staff_release",
    "silence",
    "doctor",
    "reset_presence",  # forget the area's presence (after an evacuation): no passback refusals
    "enrol_finger",  # capture a finger on the door's sensor for the office (args: EnrolFingerArgs)
]


class Command(Msg):
    """``.../cmd`` or ``edgegate/<site>/all/cmd``. Refused after ``expires`` and on replay."""

    type: Literal["command"]
    v: Literal[1] = PROTOCOL
    id: ID
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR = Field(description="The door id, or 'all'.")
    cmd: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    issued: AwareDatetime
    expires: AwareDatetime
    by: str = Field("", max_length=200, description="Operator, journaled with the ack.")

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> Command:
        if self.expires <= self.issued:
            raise ValueError("expires must be after issued")
        return self


B64_KEY = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]  # 32 raw bytes, base64
ENROL_TIMEOUT_MAX = 300.0


class EnrolFingerArgs(Msg):
    """``args`` of the ``enrol_finger`` command: capture a finger of ``person`` on the door's
    sensor and send the template back sealed to ``session``, the office's one-time X25519
    public key for this enrolment (contract/enrol_seal.py). Signed with the command, so a
    door only ever seals a template to a key the office chose."""

    person: ID
    session: B64_KEY
    timeout: float = Field(60.0, ge=5.0, le=ENROL_TIMEOUT_MAX, description="Seconds per touch.")


EnrolStep = Literal["started", "place", "lift", "again", "poor", "captured", "failed"]


class SealedTemplate(Msg):
    """A finger template sealed for the office (contract/enrol_seal.py): the door's one-time
    X25519 public key, the AES-GCM nonce and ciphertext, all base64."""

    epk: B64_KEY
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{16}$")]  # 12 bytes
    ct: Annotated[str, Field(min_length=24, max_length=8192, pattern=r"^[A-Za-z0-9+/]+={0,2}$")]


class EnrolProgress(Msg):
    """door -> ``.../enrol`` (not signed; the template inside is sealed to the office's
    session key and bound to site, door, command id, person and sensor family): the steps
    of an ``enrol_finger`` command, ``captured`` with ``sealed`` and ``model`` at the end, or
    ``failed`` with the reason in ``detail``."""

    type: Literal["enrol_progress"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR
    cmd_id: ID
    person: ID
    step: EnrolStep
    detail: str = Field("", max_length=500)
    model: Annotated[str, Field(pattern=r"^[a-z0-9_.-]{1,32}$")] | None = None
    sealed: SealedTemplate | None = None

    @model_validator(mode="after")
    def _template_only_when_captured(self) -> EnrolProgress:
        if (self.step == "captured") != (self.sealed is not None and self.model is not None):
            raise ValueError("a sealed template and its model come with 'captured' only")
        return self


LOCAL_OFFER_MAX = 1000  # people in one offer: it stays far below the office's inbound limit


class LocalPeople(Msg):
    """door -> ``.../credentials/local`` (not signed: it offers, it changes nothing): the people
    a door enrolled on its own, sent when it refuses the office's snapshot to keep them. An
    operator reviews them at the office before they enter the master
    (``edgegate central doors import-local``). Cards and PINs only: biometric templates never
    leave the door (``data`` is always empty)."""

    type: Literal["local_people"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR
    total: int = Field(ge=0, description="Local people at the door (more than sent if capped).")
    people: list[PersonMsg] = Field(max_length=LOCAL_OFFER_MAX)
    credentials: list[CredentialMsg] = Field(max_length=4 * LOCAL_OFFER_MAX)

    @model_validator(mode="after")
    def _no_biometrics(self) -> LocalPeople:
        if any(c.data is not None or c.kind in ("finger", "face") for c in self.credentials):
            raise ValueError("biometric credentials never leave the door")
        return self


class SnapshotRequest(Msg):
    """door -> ``.../credentials/request`` (not signed: it asks, it changes nothing)."""

    type: Literal["snapshot_request"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR
    have: int = Field(ge=0, description="The credential version the door holds.")
    reason: str = Field("", max_length=200)


RECEIPT_GAPS = 32  # holes named in one receipt; the rest come in later ones


class Receipt(Msg):
    """-> ``.../<door>/receipts`` (signed, not retained): the office holds every event of the
    door's journal ``epoch`` with ``first <= seq <= upto``. The door marks those ``archived``
    and may prune them; an event the broker acknowledged but no receipt covers is sent again
    after a timeout."""

    type: Literal["receipt"]
    v: Literal[1] = PROTOCOL
    site: SITE_OR_DOOR
    door: SITE_OR_DOOR
    epoch: EPOCH = Field(
        "",
        description="The door's journal epoch the run is of; '' (left out on the wire, which "
        "doors from before epochs require) for a door whose events name none.",
    )
    first: int = Field(ge=1, description="The lowest seq of the run the office holds.")
    upto: int = Field(ge=1, description="The highest seq up to which it holds every event.")
    last: int | None = Field(
        None, ge=1, description="The highest seq it holds (None: no more than ``upto``)."
    )
    missing: list[tuple[int, int]] = Field(
        default_factory=list,
        max_length=RECEIPT_GAPS,
        description="The first holes above ``upto`` (inclusive seq ranges it does not hold, "
        "below ``last``), so a door re-sends those and not the events it has.",
    )
    issued: AwareDatetime

    @model_validator(mode="after")
    def _first_before_upto(self) -> Receipt:
        if self.first > self.upto:
            raise ValueError("first must not be above upto")
        floor = self.upto
        for a, b in self.missing:
            if not floor < a <= b < (self.last or 0):
                raise ValueError("missing ranges must be ordered, above upto and below last")
            floor = b
        return self


Signed = CredentialUpdate | SnapshotChunk | Command | Receipt
M = TypeVar("M", bound=Msg)


_SIGNED: TypeAdapter[Signed] = TypeAdapter(
    Annotated[CredentialUpdate | SnapshotChunk | Command | Receipt, Field(discriminator="type")]
)


def _malformed(exc: ValidationError) -> RejectedMessage:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(message)"
    return RejectedMessage("malformed", f"{where}: {first['msg']}")


def parse_signed(verifier: Verifier, payload: bytes, model: type[M]) -> M:
    """Verify then validate; RejectedMessage("malformed", ...) when the body does not fit."""
    message = verifier.verify(payload)
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        raise _malformed(exc) from None


def parse_any_signed(verifier: Verifier, payload: bytes) -> Signed:
    """Verify, then validate as whichever signed message its ``type`` names."""
    message = verifier.verify(payload)
    try:
        return _SIGNED.validate_python(message)
    except ValidationError as exc:
        raise _malformed(exc) from None


def rfc3339(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")
