"""``edgegate enroll face``: a person's face from photos taken at the door.

Only encodings are stored (sealed with the store key); the photos are read once and never
kept or sent. The running daemon notices the new credential within a couple of seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgegate.cli.common import CliError, add_config_arg, load_config, open_store
from edgegate.store.db import transaction


def register(kinds: argparse._SubParsersAction) -> None:
    face = kinds.add_parser("face", help="enrol a face from one or more photos")
    add_config_arg(face)
    face.add_argument("--person", required=True, help="person id")
    face.add_argument("--name", default=None, help="person's display name")
    face.add_argument(
        "--image", required=True, nargs="+", type=Path, help="photo(s) with exactly one face"
    )
    face.set_defaults(func=cmd_enroll_face)


def cmd_enroll_face(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        from edgegate.face.credentials import put_face
        from edgegate.face.encode import FaceImageError, encodings_from_images
    except ImportError as exc:
        raise CliError(f"the face stack is not installed ({exc}): install edgegate[face]") from None
    from edgegate.store.sealed import SealError, load_key

    try:
        encodings = encodings_from_images(args.image)
    except FaceImageError as exc:
        raise CliError(f"face enrolment failed: {exc}") from None
    conn = open_store(config)
    try:
        key = load_key(config.storage.path, config.storage.key_file)
        with transaction(conn):
            count = put_face(conn, key, args.person, encodings, name=args.name)
    except SealError as exc:
        raise CliError(str(exc)) from None
    finally:
        conn.close()
    print(f"enrolled face of {args.person} ({count} encoding(s), sealed)")
    return 0
