"""What every ``edgegate central`` command shares: config, master store, key, publishing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgegate.central.writer_handoff import Writes
from edgegate.cli.common import CliError, load_config
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer, load_private
from edgegate.store.sealed import SealError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from edgegate.central.config import CentralConfig

# Exit status of a change that is in the master store but did not reach the broker.
EXIT_NOT_PUBLISHED = 3


def add_central_config(parser: argparse.ArgumentParser) -> None:
    from edgegate.central.config import DEFAULT_CENTRAL_PATH

    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CENTRAL_PATH,
        help=f"central office config (default {DEFAULT_CENTRAL_PATH})",
    )


def load(args: argparse.Namespace) -> CentralConfig:
    from edgegate.central.config import load_central

    return load_config(args.config, load_central)


def master(
    config: CentralConfig, *, readonly: bool = False, writes: Writes = Writes.INTERACTIVE
) -> Engine:
    """The office store, migrated (every command brings it to the current schema)."""
    from sqlalchemy.exc import SQLAlchemyError

    from edgegate.central import store
    from edgegate.central.migrate import StoreSchemaError

    c = config.central
    try:
        return store.open_master(c.db, readonly=readonly, key_file=c.store_key_file, writes=writes)
    except (StoreSchemaError, SealError) as exc:
        raise CliError(f"{c.db}: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"office store {store_label(c.db)}: {exc}") from None


def store_label(db: str) -> str:
    """The store's name for messages, without a password a URL may carry."""
    from edgegate.central.engine import store_url

    return store_url(db).render_as_string(hide_password=True)


def signer(config: CentralConfig) -> Signer:
    path = config.central.key_file
    try:
        return Signer(load_private(path))
    except FileNotFoundError:
        raise CliError(f"{path}: no key; run `edgegate central keygen` first") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CliError(f"{path}: cannot load the signing key: {exc}") from None


def publish_pending(
    config: CentralConfig, engine: Engine, sign: Signer, progress: object = None
) -> int:
    """Publish every unpublished version; on a broker failure say so, exit 3, keep them."""
    from edgegate.central import store
    from edgegate.central.publisher import BrokerUnreachable, Publisher

    c = config.central
    try:
        with Publisher(config.mqtt, sign, c.site, c.publish_timeout_seconds) as pub:
            sent = pub.versions(engine, progress)
    except BrokerUnreachable as exc:
        with store.reading(engine) as conn:
            left = store.unpublished_count(conn)
        print(
            f"edgegate: broker unreachable ({exc}); {left} version(s) saved in the master "
            "store but not published. Doors catch up by snapshot when the next version "
            "reaches them, or run `edgegate central publish` once the broker is back.",
            file=sys.stderr,
        )
        return EXIT_NOT_PUBLISHED
    if sent:
        print(f"published version {sent[0]}" + (f"..{sent[-1]}" if len(sent) > 1 else ""))
    return 0


def change(
    config: CentralConfig,
    ops: list[m.Op],
    done: str,
    action: str = "",
    target: str = "",
    committed: Callable[[], None] | None = None,
) -> int:
    """The rule of every mutating command: master store first (new version(s) and their
    ops in one transaction, audited), then publish. The office service does the first part,
    as for the console and the API. ``committed`` runs in between (e.g. recording a decision
    the published version must find)."""
    from edgegate.central.services import credentials, open_office
    from edgegate.cli.central_console import cli_actor

    sign = signer(config)  # a missing key must stop the command before the master changes
    office = open_office(config)
    try:
        versions = credentials.commit(
            office, cli_actor(), ops, action or done.split(" ")[0], target or done
        )
    except credentials.ChangeRefused as exc:
        raise CliError(str(exc)) from None
    print(f"{done} (version {versions[-1].version})")
    if committed is not None:
        committed()
    return publish_pending(config, office.master(), sign)
