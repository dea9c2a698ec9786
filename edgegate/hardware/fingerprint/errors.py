"""Confirmation codes of the ZhianTec/Grow modules, each mapped to an exception class.

Every acknowledge packet starts with a confirmation code. ``0x00`` means done; everything else
is raised as a ``ConfirmationError`` subclass so callers can catch by meaning (``PoorCapture``
for guidance at the door, ``NotFound`` for an unknown finger) instead of comparing numbers.
The table covers the R307/AS608/ZFM-20 datasheet codes plus the later codes of the R503 family.

Line-level trouble (no answer, corrupt answers) is a ``CommunicationError``, which is also an
``OSError``: the reader base class treats it as a device fault and reopens with backoff.
"""

from __future__ import annotations

from edgegate.errors import EdgegateError


class FingerprintError(EdgegateError):
    """Anything that went wrong talking to a fingerprint sensor."""


class CommunicationError(FingerprintError, OSError):
    """The sensor did not answer usefully (timeout, corrupt answers, port gone)."""


class SensorTimeout(CommunicationError, TimeoutError):
    """No (valid) answer within the timeout: unplugged, wrong baud rate or wrong address."""


class CorruptResponse(CommunicationError):
    """Answers kept failing their checksum or arrived out of sequence."""


class ConfirmationError(FingerprintError):
    """The sensor answered with a non-zero confirmation code."""

    code: int = -1
    meaning: str = "unknown confirmation code"

    def __init__(self, code: int | None = None, instruction: int | None = None) -> None:
        if code is not None:
            self.code = code
        self.instruction = instruction
        where = f" (instruction 0x{instruction:02X})" if instruction is not None else ""
        super().__init__(f"sensor code 0x{self.code:02X}: {self.meaning}{where}")

    @property
    def reason(self) -> str:
        """A short snake_case reason for events and callbacks (e.g. ``messy_image``)."""
        return _REASONS.get(type(self), f"code_{self.code:02x}")


class PoorCapture(ConfirmationError):
    """The image was not good enough; the person should place the finger again."""


class NoFinger(PoorCapture):
    code, meaning = 0x02, "no finger on the sensor"


class ImageFail(PoorCapture):
    code, meaning = 0x03, "failed to capture the finger image"


class MessyImage(PoorCapture):
    code, meaning = 0x06, "image too messy to extract features"


class TooFewFeatures(PoorCapture):
    code, meaning = 0x07, "too few feature points (finger too small, dry or off-centre)"


class NoValidImage(PoorCapture):
    code, meaning = 0x15, "no valid image in the image buffer"


class PacketReceiveError(ConfirmationError):
    code, meaning = 0x01, "the sensor received a corrupt packet"


class NoMatch(ConfirmationError):
    code, meaning = 0x08, "the two templates do not match"


class NotFound(ConfirmationError):
    code, meaning = 0x09, "no matching finger in the library"


class MergeFailed(ConfirmationError):
    code, meaning = 0x0A, "the two captures could not be merged (not the same finger?)"


class BadPageId(ConfirmationError):
    code, meaning = 0x0B, "template slot outside the library"


class TemplateReadError(ConfirmationError):
    code, meaning = 0x0C, "template slot empty or template invalid"


class UploadFailed(ConfirmationError):
    code, meaning = 0x0D, "template upload failed"


class DataReceiveFailed(ConfirmationError):
    code, meaning = 0x0E, "the sensor could not receive the data packets"


class ImageUploadFailed(ConfirmationError):
    code, meaning = 0x0F, "image upload failed"


class DeleteFailed(ConfirmationError):
    code, meaning = 0x10, "template delete failed"


class EmptyFailed(ConfirmationError):
    code, meaning = 0x11, "clearing the library failed"


class WrongPassword(ConfirmationError):
    code, meaning = 0x13, "wrong sensor password"


class FlashError(ConfirmationError):
    code, meaning = 0x18, "flash write error in the sensor"


class UndefinedError(ConfirmationError):
    code, meaning = 0x19, "undefined sensor error"


class BadRegister(ConfirmationError):
    code, meaning = 0x1A, "invalid register number"


class BadRegisterConfig(ConfirmationError):
    code, meaning = 0x1B, "invalid register configuration"


class BadNotepadPage(ConfirmationError):
    code, meaning = 0x1C, "invalid notepad page number"


class PortError(ConfirmationError):
    code, meaning = 0x1D, "the sensor failed to operate its communication port"


class AutoEnrollFailed(ConfirmationError):
    code, meaning = 0x1E, "automatic enrolment failed"


class LibraryFull(ConfirmationError):
    code, meaning = 0x1F, "fingerprint library full"


class BadAddress(ConfirmationError):
    code, meaning = 0x20, "wrong sensor address"


class PasswordNotVerified(ConfirmationError):
    code, meaning = 0x21, "the password must be verified first"


class TemplateEmpty(ConfirmationError):
    code, meaning = 0x22, "template buffer empty"


class LibraryEmpty(ConfirmationError):
    code, meaning = 0x24, "fingerprint library empty"


class SensorTimedOut(ConfirmationError):
    code, meaning = 0x26, "the sensor timed out"


class AlreadyExists(ConfirmationError):
    code, meaning = 0x27, "the fingerprint already exists"


class SensorHardwareError(ConfirmationError):
    code, meaning = 0x29, "sensor hardware error"


class UnsupportedCommand(ConfirmationError):
    code, meaning = 0xFC, "command not supported by this sensor"


class HardwareError(ConfirmationError):
    code, meaning = 0xFD, "hardware error"


class CommandFailed(ConfirmationError):
    code, meaning = 0xFE, "command execution failed"


ERRORS: dict[int, type[ConfirmationError]] = {
    cls.code: cls
    for cls in (
        PacketReceiveError, NoFinger, ImageFail, MessyImage, TooFewFeatures, NoMatch, NotFound,
        MergeFailed, BadPageId, TemplateReadError, UploadFailed, DataReceiveFailed,
        ImageUploadFailed, DeleteFailed, EmptyFailed, WrongPassword, NoValidImage, FlashError,
        UndefinedError, BadRegister, BadRegisterConfig, BadNotepadPage, PortError,
        AutoEnrollFailed, LibraryFull, BadAddress, PasswordNotVerified, TemplateEmpty,
        LibraryEmpty, SensorTimedOut, AlreadyExists, SensorHardwareError, UnsupportedCommand,
        HardwareError, CommandFailed,
    )
}  # fmt: skip

_REASONS: dict[type[ConfirmationError], str] = {
    NoFinger: "no_finger",
    ImageFail: "image_failed",
    MessyImage: "messy_image",
    TooFewFeatures: "too_few_features",
    NoValidImage: "no_valid_image",
    NotFound: "not_found",
    NoMatch: "no_match",
    MergeFailed: "merge_failed",
    WrongPassword: "wrong_password",
}


def error_for(code: int, instruction: int | None = None) -> ConfirmationError:
    """The exception for a non-zero confirmation code (unknown codes get the base class)."""
    cls = ERRORS.get(code, ConfirmationError)
    return cls(code, instruction)


def check(code: int, instruction: int | None = None) -> None:
    """Raise the matching ``ConfirmationError`` unless ``code`` is 0x00."""
    if code != 0:
        raise error_for(code, instruction)
