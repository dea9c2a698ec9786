"""``[fingerprint]`` and ``[camera]``: the biometric readers (docs/fingerprint.md, docs/face.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgegate.config.base import ID_PATTERN, StrictModel


class FingerprintConfig(StrictModel):
    port: str = Field("/dev/ttyUSB0", description="Serial device of the fingerprint module.")
    baudrate: int = Field(57600, gt=0, description="Module baud rate (57600 by default).")
    direction: Literal["in", "out"] = Field("in", description="Direction of this reader.")
    name: str = Field("finger", pattern=ID_PATTERN, description="Reader name in events and logs.")
    model: str = Field(
        "r307",
        pattern=ID_PATTERN,
        description="Sensor family (r307, r503, as608, zfm20). Templates are tagged with it: "
        "they are not portable between families.",
    )
    address: int = Field(
        0xFFFFFFFF, ge=0, le=0xFFFFFFFF, description="Module address (default 0xFFFFFFFF)."
    )
    password: int = Field(
        0, ge=0, le=0xFFFFFFFF, description="Module password (VfyPwd); 0 on a new module."
    )
    min_score: int = Field(
        50, ge=0, le=1000, description="Lowest match score that counts as a match."
    )
    poll_interval: float = Field(
        0.15, gt=0, le=5, description="Seconds between finger-detection polls (GenImg)."
    )
    assist_after: int = Field(
        3,
        ge=1,
        le=100,
        description="Failed or poor touches within assist_window_seconds before an "
        "assist_requested event calls staff.",
    )
    assist_window_seconds: float = Field(
        60.0, gt=0, description="Window for counting failed touches towards assist_after."
    )


class CameraConfig(StrictModel):
    """Face entry (docs/face.md has the reasons behind each default)."""

    source: str = Field(
        "0", description="Camera: a device index ('0'), a video file path, or a stream URL."
    )
    direction: Literal["in", "out"] = Field("in", description="Direction of this reader.")
    name: str = Field("camera", pattern=ID_PATTERN, description="Reader name in events and logs.")
    mode: Literal["face", "card+face"] = Field(
        "face",
        description="'face': a recognised face opens alone; 'card+face': a card opens only "
        "with a face of the card's person within card_face_window_seconds (and a face alone "
        "never opens).",
    )
    card_face_window_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="With mode 'card+face': how long card and face may be apart.",
    )
    tolerance: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Largest face distance that counts as a match. Stricter than the library's "
        "0.6: a door must rather refuse than open for a look-alike.",
    )
    margin: float = Field(
        0.08,
        ge=0,
        le=1.0,
        description="The best person's distance must beat the second-best person's by this much; "
        "otherwise the face is ambiguous and not matched.",
    )
    confirm_frames: int = Field(
        2, ge=1, le=30, description="k: the same person in k of the last n frames opens."
    )
    window_frames: int = Field(
        3, ge=1, le=60, description="n: frames of one try; k of them must name the same person."
    )
    min_face_px: int = Field(
        100,
        ge=20,
        le=1000,
        description="Faces smaller than this (box height, pixels of the full frame) are ignored: "
        "too far away to be the person at the door, and too few pixels to encode reliably.",
    )
    min_sharpness: float = Field(
        150.0,
        ge=0,
        description="Frames whose face region (scaled to 64x64) has a variance of Laplacian "
        "below this are motion-blurred and skipped (0: no check). Sharp faces score 350 and "
        "more on the test photos, a 35-pixel motion blur about 140.",
    )
    downscale: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Detection runs on the frame scaled by this factor (encoding on the full "
        "frame); at 0.5 the detector finds faces from about 105 pixels tall, at 1.0 from about "
        "60 (four times the cost).",
    )
    descriptor_engine: Literal["blas", "dlib"] = Field(
        "blas",
        description="Who runs dlib's face descriptor network: 'blas' (NumPy's BLAS on one "
        "thread, the same 128 numbers as dlib to 1e-6, 4-7x faster than the prebuilt dlib) or "
        "'dlib' (face_recognition's own encoder). Encodings from either match each other.",
    )
    motion_fraction: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Face detection is skipped (the last boxes reused) while less than this "
        "fraction of an 80x60 colour thumbnail changed by more than 12 levels in a channel "
        "since the last detected frame; a 100-pixel face is ~0.025 of a 640x480 frame. "
        "0: detect every frame.",
    )
    motion_max_seconds: float = Field(
        0.5,
        gt=0,
        le=10,
        description="Detection runs at least this often, whatever the motion check says.",
    )
    dominance: float = Field(
        1.5,
        ge=1.0,
        description="With several faces in view the largest is decided only when its area is at "
        "least this many times the next one's; otherwise nobody is decided (two people side by "
        "side).",
    )
    liveness: bool = Field(
        False,
        description="Require a blink (eye aspect ratio dip over consecutive frames) before a "
        "grant. Stops a still photo; not a video or a mask (docs/face.md).",
    )
    blink_ear: float = Field(
        0.21, gt=0, lt=1, description="Eye aspect ratio below which the eyes count as closed."
    )
    liveness_frames: int = Field(
        30,
        ge=3,
        le=600,
        description="Frames of one face within which a blink must be seen before the try fails.",
    )
    assist_after: int = Field(
        3,
        ge=1,
        le=100,
        description="Failed tries within assist_window_seconds before assist_requested calls "
        "staff (a try is window_frames frames of a face in view).",
    )
    assist_window_seconds: float = Field(
        30.0, gt=0, description="Window for counting failed tries towards assist_after."
    )
    redecide_seconds: float = Field(
        5.0,
        gt=0,
        description="A face that stays in view after its decision is decided again only after "
        "this long (no event storm from someone standing at the door).",
    )
    retry_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="After a refused try the face is left alone this long before the next try "
        "(the person sees the red light; the CPU is not spent on every frame of a stranger).",
    )
    qr: bool = Field(
        False,
        description="Also read visitor QR passes from the same frames (OpenCV's QR detector, "
        "in the face process; docs/visitors.md). Decided as kind 'qr'.",
    )
    qr_hold_off_seconds: float = Field(
        3.0,
        ge=0,
        le=60,
        description="A pass held in front of the camera is decoded in frame after frame; the "
        "same code within this many seconds counts once.",
    )
    fps: float = Field(
        0.0,
        ge=0,
        le=120,
        description="Frame rate a video file is played at (0: the file's own); devices and "
        "streams run at their own rate.",
    )
    nice: int = Field(
        10, ge=0, le=19, description="Niceness of the face process, so cards always come first."
    )

    @model_validator(mode="after")
    def _k_of_n(self) -> CameraConfig:
        if self.confirm_frames > self.window_frames:
            raise ValueError(
                f"confirm_frames ({self.confirm_frames}) must not exceed window_frames "
                f"({self.window_frames})"
            )
        return self
