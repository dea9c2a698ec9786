"""The central office's own TOML file (default ``/etc/edgegate/central.toml``).

``[mqtt]`` is the door's ``MqttConfig``: whatever broker keys doors get (TLS, auth) the
central office gets too. Unknown keys are refused, as on a door.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from edgegate.central.alarms_config import AlarmsSection, SmtpSection
from edgegate.config.load import ConfigError, format_errors, read_toml
from edgegate.config.models import (
    ID_PATTERN,
    FingerprintConfig,
    LoggingConfig,
    MqttConfig,
    StrictModel,
)

DEFAULT_CENTRAL_PATH = Path("/etc/edgegate/central.toml")


class CentralSection(StrictModel):
    site: str = Field(
        description="Site id the office manages; part of every MQTT topic (letters, digits, "
        "_ and -).",
        pattern=ID_PATTERN,
    )
    key_file: Path = Field(
        Path("/etc/edgegate/central.key"),
        description="Ed25519 private key (PEM, mode 0600) that signs everything sent to doors; "
        "`edgegate central keygen` writes it.",
    )
    db: str = Field(
        "/var/lib/edgegate/central.db",
        min_length=1,
        description="The office store (people, credentials, versions, event archive, doors): "
        "a file path for SQLite (the embedded default, created 0600; one `central serve`), or "
        "a SQLAlchemy URL for PostgreSQL, e.g. `postgresql+psycopg://edgegate@db1/edgegate` "
        "(docs/central.md). Migrated on every start.",
    )
    store_key_file: Path | None = Field(
        None,
        description="32-byte key sealing fingerprint templates and face encodings at rest in "
        "the store. Unset: the systemd credential `store-key`, else `store.key` beside an "
        "SQLite store (created 0600). A PostgreSQL store needs it (or the credential): the "
        "same key on every office instance.",
    )
    erasure_ledger: Path | None = Field(
        None,
        description="The ledger of erasures (one line each: a keyed digest of the person id "
        "and their pseudonym, never the id), kept outside the store so `central people erase "
        "--reapply` can repeat them after an older backup is restored. Unset: "
        "`erasures.jsonl` beside an SQLite store, `/var/lib/edgegate/erasures.jsonl` with "
        "PostgreSQL (give every instance and the CLI the same shared file).",
    )
    archive_retention_days: int = Field(
        0,
        ge=0,
        le=36_500,
        description="Events older than this many days (by their own time) are deleted from "
        "the archive, daily by `central serve` (PostgreSQL drops whole month partitions). "
        "0 keeps every event.",
    )
    catchup_max_versions: int = Field(
        500,
        ge=0,
        le=100_000,
        description="A door that asks with a version at most this many versions behind gets "
        "the versions it missed from the version log (re-sent once on the site's credentials "
        "topic for every door behind) instead of a full snapshot. 0: always a snapshot.",
    )
    snapshot_chunk_people: int = Field(
        2000,
        ge=1,
        le=50_000,
        description="People per snapshot chunk (a chunk also closes at snapshot_chunk_bytes).",
    )
    snapshot_chunk_bytes: int = Field(
        1_000_000,
        ge=10_000,
        le=8_000_000,
        description="Approximate payload size at which a snapshot chunk closes (face encodings "
        "make people large).",
    )
    update_max_ops: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="Most ops in one credential version; a bigger change (an import) becomes "
        "several consecutive versions, each applied atomically by the doors.",
    )
    command_ttl_seconds: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Default lifetime of a command; a door refuses it after that (--ttl).",
    )
    publish_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How long the CLI waits for the broker (connect and each PUBACK) before it "
        "reports the broker unreachable.",
    )
    pending_sweep_seconds: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="How often `central serve` looks for credential versions that were "
        "saved but never published (a CLI command that could not reach the broker) and sends "
        "them. A change made in the console or the API is published at once, never waiting "
        "for this.",
    )
    offline_after_seconds: float = Field(
        0,
        ge=0,
        description="`central doors` shows a door as stale when nothing came from it for this "
        "long (0: only the availability topic counts).",
    )
    instance: str = Field(
        "",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="This `central serve` instance's name, unique among the site's instances "
        "(its MQTT client id is `edgegate-central-<site>-<instance>`); default: the host "
        "name. Set it when two instances run on one host (docs/production.md).",
    )
    event_receivers: int = Field(
        0,
        ge=0,
        le=16,
        description="Processes of their own that receive the doors' events for this "
        "instance (0: serve's own MQTT client receives them). Receiving in process takes "
        "turns at Python's GIL with storing; on an office with cores to spare 1 or 2 store "
        "far more events a second with less CPU (docs/benchmarks.md). Either engine.",
    )
    session_expiry_seconds: int = Field(
        30,
        ge=0,
        le=86_400,
        description="How long the broker keeps this instance's MQTT 5 session while it is "
        "away: a quick restart (an upgrade, a crash restarted by systemd) still gets what "
        "the broker kept for it. With several instances a dead one's share of the doors' "
        "messages waits this long before the broker drops it (the doors re-send what no "
        "receipt covered), so keep it short.",
    )
    duty_check_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often an instance tries to take the singleton duties (publishing "
        "versions, answering snapshot requests, escalations, webhooks, visitors' notices, "
        "housekeeping; PostgreSQL advisory lock) and checks it still holds them.",
    )


class HttpSection(StrictModel):
    listen: str = Field(
        "127.0.0.1",
        description="Address the console and REST API listen on (0.0.0.0 or :: for every "
        "interface; the default serves this machine only).",
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the console and API.")
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) for HTTPS; with tls_key. Without both, HTTP."
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are "
        "believed (client address, https). Empty: no proxy is trusted.",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="A console sign-in lasts this long."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class VisitorsSection(StrictModel):
    exit_hold: bool = Field(
        True,
        description="Hold visitors on exit (settlement_required) until their host signs the "
        "visit off (docs/visitors.md).",
    )
    restricted_zones: list[str] = Field(
        default_factory=list,
        description="Zones a visit may ask for but a pass opens only after an approver's "
        "approval (e.g. the workshop).",
    )
    approver_roles: list[str] = Field(
        default_factory=lambda: ["admin", "security"],
        description="Operator roles that may approve a zone beyond the visit's.",
    )
    retention_days: float = Field(
        30.0,
        ge=0,
        description="Visitor personal data (name, company, contact, reason) is anonymised this "
        "many days after the visit's expected departure.",
    )
    link_hours: float = Field(
        72.0, gt=0, description="How long a host's one-time link (confirm, sign off) stays valid."
    )
    link_base_url: str = Field(
        "",
        description="Prefix of the host's one-time links, e.g. "
        "'https://office.example/visit-link/'; empty: the bare token is shown.",
    )


class CentralConfig(StrictModel):
    central: CentralSection = Field(description="The central office's site, key and store.")
    mqtt: MqttConfig = Field(
        default_factory=MqttConfig, description="Broker shared with the doors (same keys)."
    )
    fingerprint: FingerprintConfig | None = Field(
        None,
        description="The office's desk fingerprint sensor (same keys as a door's), for "
        "`central people add-credential --kind finger --capture`.",
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, description="Log output of `edgegate central serve`."
    )
    http: HttpSection | None = Field(
        None,
        description="The web console and REST API served by `edgegate central serve` "
        "(docs/console.md).",
    )
    alarms: AlarmsSection = Field(
        default_factory=AlarmsSection,
        description="Alarms from door events: priorities, escalation (docs/alarms.md).",
    )
    smtp: SmtpSection | None = Field(
        None, description="Outgoing e-mail (alarm escalation). Without it, no e-mail is sent."
    )
    visitors: VisitorsSection = Field(
        default_factory=VisitorsSection, description="Visits, passes and visitor privacy."
    )


def parse_central(data: dict, path: Path) -> CentralConfig:
    try:
        return CentralConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, format_errors(path, exc)) from None


def load_central(path: Path | str) -> CentralConfig:
    path = Path(path)
    return parse_central(read_toml(path), path)
