"""From pixels to encodings with face_recognition (dlib): detection, landmarks, descriptors.

One place for the library calls, shared by enrolment (``encodings_from_images``, used by
``edgegate enroll face`` and by the central office) and by the door's pipeline. Boxes are
``(top, right, bottom, left)`` in pixels, the library's order.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgegate.errors import EdgegateError

Box = tuple[int, int, int, int]
# An enrolment photo: a file (the door's CLI), or (name, content) uploaded to the office.
Photo = Path | str | tuple[str, bytes]
# Decoded pixels are 3 bytes each: a 50-megapixel image is 150 MB of RAM; anything larger is
# refused before it is decoded (also the guard against a "decompression bomb" file).
MAX_PIXELS = 50_000_000


class FaceImageError(EdgegateError, ValueError):
    """An enrolment image that cannot be used: unreadable, no face, or several faces.

    ``reason`` names which, for the office's counters: ``not_image``, ``too_large``,
    ``unreadable``, ``no_face``, ``several_faces``."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


def _fr() -> Any:  # imported late so card-only doors never load dlib
    import face_recognition

    return face_recognition


def box_height(box: Box) -> int:
    return box[2] - box[0]


def box_area(box: Box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[1] - box[3])


def detect(rgb: np.ndarray, scale: float = 1.0, upsample: int = 0) -> list[Box]:
    """Face boxes in ``rgb`` (full-frame pixels), found by HOG on the frame scaled by ``scale``.

    Detection cost grows with pixels, encoding does not, so detection runs small and the boxes
    are scaled back for encoding on the full frame.
    """
    import cv2

    small = rgb
    if scale != 1.0:
        small = cv2.resize(rgb, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = _fr().face_locations(small, number_of_times_to_upsample=upsample)
    h, w = rgb.shape[:2]
    out: list[Box] = []
    for top, right, bottom, left in boxes:
        out.append(
            (
                max(0, round(top / scale)),
                min(w, round(right / scale)),
                min(h, round(bottom / scale)),
                max(0, round(left / scale)),
            )
        )
    return out


def landmarks(rgb: np.ndarray, box: Box, model: str = "large") -> object:
    """dlib's full_object_detection for one box (68 points with "large", 5 with "small")."""
    from face_recognition import api

    return api._raw_face_landmarks(rgb, [box], model)[0]


def encode(rgb: np.ndarray, shape: object, engine: str = "blas") -> np.ndarray:
    """The 128-d descriptor of the face whose landmarks are ``shape`` (the costly step).

    ``engine`` picks who runs dlib's network (edgegate/face/descriptor.py); both give the
    same numbers.
    """
    from edgegate.face.descriptor import descriptor

    return descriptor(engine)(rgb, shape)


def photo_name(photo: Photo) -> str:
    return photo[0] if isinstance(photo, tuple) else str(photo)


def load_rgb(photo: Photo) -> np.ndarray:
    """An image file (or uploaded content) as an RGB uint8 array, upright as the camera
    meant it (EXIF orientation); FaceImageError if it is not a readable image.

    Pillow does what face_recognition's ``load_image_file`` does (open, convert to RGB), with
    the size checked before any pixel is decoded.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = photo_name(photo)
    source = io.BytesIO(photo[1]) if isinstance(photo, tuple) else str(photo)
    try:
        with Image.open(source) as im:
            if im.width * im.height > MAX_PIXELS:
                raise FaceImageError(
                    f"{name}: image too large ({im.width}x{im.height}; "
                    f"at most {MAX_PIXELS // 1_000_000} megapixels)",
                    "too_large",
                )
            upright = ImageOps.exif_transpose(im).convert("RGB")
            return np.ascontiguousarray(np.asarray(upright))
    except FaceImageError:
        raise
    except UnidentifiedImageError:
        raise FaceImageError(
            f"{name}: not an image (JPEG, PNG, ... expected)", "not_image"
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FaceImageError(f"{name}: cannot read image ({exc})") from None


ENROL_MAX_SIDE = 1024


def limit_size(rgb: np.ndarray) -> np.ndarray:
    # A 12-megapixel phone photo takes seconds to search; a face in it is still hundreds of
    # pixels at 1024 on the long side, far above what the 150x150 descriptor uses.
    import cv2

    side = max(rgb.shape[:2])
    if side <= ENROL_MAX_SIDE:
        return rgb
    f = ENROL_MAX_SIDE / side
    return cv2.resize(rgb, (0, 0), fx=f, fy=f, interpolation=cv2.INTER_AREA)


def encoding_from_image(rgb: np.ndarray, source: str = "image") -> np.ndarray:
    """The one face of an enrolment photo, encoded on the full-resolution image.

    Enrolment is strict: exactly one face, so nobody is enrolled under someone else's id by
    a bystander in the background of a photo.
    """
    rgb = limit_size(rgb)
    # Portraits have large faces: search without upsampling first (4x cheaper), then with.
    boxes = _fr().face_locations(rgb, number_of_times_to_upsample=0)
    if not boxes:
        boxes = _fr().face_locations(rgb, number_of_times_to_upsample=1)
    if not boxes:
        raise FaceImageError(f"{source}: no face found", "no_face")
    if len(boxes) > 1:
        raise FaceImageError(
            f"{source}: {len(boxes)} faces found; use a photo of one person", "several_faces"
        )
    return encode(rgb, landmarks(rgb, boxes[0]))


def encodings_from_images(photos: Iterable[Photo]) -> np.ndarray:
    """(k, 128) float32 encodings, one per photo: what a person's face credential stores.

    Raises FaceImageError naming the first photo that cannot be used.
    """
    rows = [encoding_from_image(load_rgb(p), photo_name(p)) for p in photos]
    if not rows:
        raise FaceImageError("no images given", "no_face")
    return np.vstack(rows).astype(np.float32)


def face_data_from_photos(photos: Iterable[Photo]) -> bytes:
    """A face credential's data (the versioned face format) from enrolment photos: what the
    central office stores and sends when an operator enrols a face (it is handed this
    function by its composition root; the office itself never imports the face stack)."""
    from edgegate.face.credentials import to_bytes

    return to_bytes(encodings_from_images(photos))
