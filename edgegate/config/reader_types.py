"""The reader types: one declaration each, found by name or by entry point.

A reader type is its config model (the ``[[readers]]`` table, or a section such as
``[fingerprint]``) and its builder, declared once in a :class:`ReaderType`. The built-in
types are listed in :data:`BUILTIN`, so a source checkout works without installing anything;
other packages add types through the ``edgegate.readers`` entry-point group (as gpiozero
finds its pin factories), each entry point naming a ``ReaderType``::

    [options.entry_points]
    edgegate.readers =
        acme = acme_edgegate:READER_TYPE

Everything that used to repeat the list (the config union, the tags in error messages, the
builders, doctor's checks) reads it from here. The builder and the doctor check are named as
``"module:function"`` and imported only when a door builds that reader: the config layer stays
free of the hardware layer, and a door without the ``osdp`` extra can still load its config.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

import structlog
from pydantic import Field

from edgegate.config.base import StrictModel
from edgegate.config.biometric import CameraConfig, FingerprintConfig
from edgegate.config.readers import (
    OsdpConfig,
    Pn532Config,
    QrHidConfig,
    QrScannerConfig,
    Rdm6300Config,
    ReaderBase,
    WiegandConfig,
)

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "edgegate.readers"


@dataclass(frozen=True, slots=True)
class ReaderType:
    """One kind of reader: its config model and where its builder and doctor check live.

    ``section`` is None for a ``[[readers]] type = ...`` table (the model's ``type`` field is a
    ``Literal`` of :attr:`name`); for a reader configured by its own section it names that
    section of :class:`~edgegate.config.models.Config` (``fingerprint``, ``camera``).
    """

    name: str
    config: type[StrictModel]
    builder: str
    doctor: str | None = None
    section: Literal["fingerprint", "camera"] | None = None

    def load_builder(self) -> Callable[..., Any]:
        return _resolve(self.builder)

    def load_doctor(self) -> Callable[..., Any] | None:
        return _resolve(self.doctor) if self.doctor else None


def _resolve(ref: str) -> Callable[..., Any]:
    # Any: the target is found by name at run time; its declaration documents its signature.
    module, _, attr = ref.partition(":")
    target: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return target


BUILTIN: tuple[ReaderType, ...] = (
    ReaderType(
        "rdm6300",
        Rdm6300Config,
        "edgegate.hardware.registry:rdm6300",
        doctor="edgegate.doctor.devices:listen_rdm6300",
    ),
    ReaderType("pn532", Pn532Config, "edgegate.hardware.registry:pn532"),
    ReaderType("wiegand", WiegandConfig, "edgegate.hardware.registry:wiegand"),
    ReaderType("osdp", OsdpConfig, "edgegate.hardware.registry:osdp"),
    ReaderType("qr_scanner", QrScannerConfig, "edgegate.hardware.registry:qr_scanner"),
    ReaderType(
        "qr_hid",
        QrHidConfig,
        "edgegate.hardware.registry:qr_hid",
        doctor="edgegate.doctor.hid:check_qr_hid",
    ),
    ReaderType(
        "fingerprint",
        FingerprintConfig,
        "edgegate.daemon.biometric:fingerprint",
        doctor="edgegate.doctor.devices:check_fingerprint",
        section="fingerprint",
    ),
    ReaderType("camera", CameraConfig, "edgegate.daemon.biometric:camera", section="camera"),
)


@cache
def reader_types() -> dict[str, ReaderType]:
    """Every reader type by name: the built-in ones, then those of installed packages."""
    found = {t.name: t for t in BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            declared = ep.load()
        except Exception as exc:  # a broken plug-in must not stop the door's own readers
            log.error("reader_type_unloadable", entry_point=ep.name, error=str(exc))
            continue
        if not isinstance(declared, ReaderType) or declared.name in found:
            log.error("reader_type_rejected", entry_point=ep.name, value=repr(declared))
            continue
        found[declared.name] = declared
    return found


def _table_models() -> tuple[type[StrictModel], ...]:
    return tuple(t.config for t in reader_types().values() if t.section is None)


if TYPE_CHECKING:
    # A union built at run time is no type to a checker: to it, any reader table (each
    # declares its `type` tag as a Literal, a str to the checker).
    class ReaderConfig(ReaderBase):
        type: str
else:
    # The `[[readers]]` union, discriminated by `type`, built from the declarations above.
    ReaderConfig = Annotated[Union[_table_models()], Field(discriminator="type")]  # noqa: UP007
# The `type` tags of the reader union; pydantic puts the tag into error locations.
READER_TYPES = frozenset(
    get_args(model.model_fields["type"].annotation)[0] for model in _table_models()
)
