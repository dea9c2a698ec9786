"""Uploaded files, read for the office services with their limits (console and API alike)."""

from __future__ import annotations

from fastapi import UploadFile

from edgegate.central.services import biometrics


async def read_photos(files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """(name, content) of uploaded photos, at most one more than the service takes, each cut
    one byte past the size limit: the service refuses a file that is too big (or too many
    files) without the whole upload in memory."""
    out = []
    for f in files[: biometrics.MAX_PHOTOS + 1]:
        out.append((f.filename or "photo", await f.read(biometrics.MAX_PHOTO_BYTES + 1)))
    return out
