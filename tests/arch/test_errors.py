"""Every exception edgegate defines derives from one root, EdgegateError, and (where one
fits) from the builtin it means, so ``except OSError`` around a device keeps working."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import edgegate
from edgegate.errors import EdgegateError

# Exceptions that mean no builtin more precise than Exception: a CLI message to print, the
# fingerprint sensor's own confirmation codes (its I/O failures are OSError subclasses), and
# two private retry signals that never leave their module.
NO_BUILTIN = {
    "edgegate.errors.EdgegateError",
    "edgegate.cli.common.CliError",
    "edgegate.hardware.fingerprint.errors.FingerprintError",
    "edgegate.hardware.fingerprint.errors.ConfirmationError",
    "edgegate.hardware.fingerprint.reader.EnrollTimeout",
    "edgegate.hardware.fingerprint.reader.DuplicateFinger",
    "edgegate.hardware.pn532.driver._Corrupt",
    "edgegate.hardware.fingerprint.sensor._Retry",
    # The console's "answer with the sign-in page" signal, and a notification channel's
    # failure (HTTP status, a missing channel, a transport error alike).
    "edgegate.central.web.auth.SignInRequired",
    "edgegate.central.services.outbox.DeliveryError",
}


def _exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(edgegate.__path__, "edgegate."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (face, osdp) not installed here
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


EXCEPTIONS = _exceptions()


def test_the_walk_finds_the_known_exceptions() -> None:
    names = {f"{e.__module__}.{e.__qualname__}" for e in EXCEPTIONS}
    assert {"edgegate.store.db.StoreError", "edgegate.config.load.ConfigError"} <= names
    assert len(EXCEPTIONS) >= 17


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_derives_from_the_root(exc: type[BaseException]) -> None:
    assert issubclass(exc, EdgegateError)


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_derives_from_the_builtin_it_means(exc: type[BaseException]) -> None:
    name = f"{exc.__module__}.{exc.__qualname__}"
    builtins = [
        b
        for b in exc.__mro__
        if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
    ]
    if any(f"{b.__module__}.{b.__qualname__}" in NO_BUILTIN for b in exc.__mro__):
        return
    assert builtins, f"{name} derives from no builtin more precise than Exception"
