"""The doors board: each door's availability, state, health and credential lag, read through
``archive.list_doors`` and ``store.current_version`` (the same data as ``central doors``)."""

from __future__ import annotations

import time
from typing import Any

from edgegate.central import archive, instances, store
from edgegate.central.services import Office


def journal_depth(telemetry: dict[str, Any] | None) -> Any:
    """The door's unsent-journal depth from its telemetry (names the door side may use)."""
    if not telemetry:
        return None
    for key in ("journal_depth", "unsent", "journal_unsent"):
        if key in telemetry:
            return telemetry[key]
    return None


def unarchived(telemetry: dict[str, Any] | None) -> int | None:
    """Events the door keeps because no receipt of the office covered them yet (None: an
    older door, or receipts off; docs/mqtt.md, receipts)."""
    value = (telemetry or {}).get("journal_unarchived")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def board(office: Office, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    with store.reading(office.master()) as conn:
        latest = store.current_version(conn)
        rows = archive.list_doors(conn)
        stale = instances.stale_after(office.config.central.duty_check_seconds)
        links = instances.office_links(conn, now, stale)
    stale_after = office.config.central.offline_after_seconds
    doors = []
    for r in rows:
        state = r["state"] or {}
        tele = r["telemetry"] or {}
        have = r["credential_version"]
        readers = tele.get("readers") or []
        faulty = list(state.get("faulty_readers") or []) + [
            x.get("name", "?") for x in readers if isinstance(x, dict) and not x.get("healthy")
        ]
        doors.append(
            {
                "site": r["site"],
                "door": r["door"],
                "availability": r["availability"],
                "stale": bool(
                    stale_after and r["last_seen"] and now - r["last_seen"] > stale_after
                ),
                "since": r["changed"],
                "last_seen": r["last_seen"],
                "mode": state.get("mode"),
                # The door's posture by the clock (free, card_pin, lockdown windows).
                "posture": state.get("posture"),
                "lock": state.get("lock"),
                "contact": state.get("contact"),
                "alarms": list(state.get("alarms") or []),
                "readers": len(readers),
                # Where an operator can enrol a finger (services/biometrics.py).
                "finger_readers": [
                    x.get("name", "?")
                    for x in readers
                    if isinstance(x, dict) and x.get("family") == "fingerprint"
                ],
                "faulty_readers": sorted(set(faulty)),
                "credential_version": have,
                "lag": None if have is None else latest - have,
                "journal_depth": journal_depth(tele),
                "unarchived": unarchived(tele),
                "software": tele.get("version"),
            }
        )
    online = sum(d["availability"] == "online" for d in doors)
    # The office's own broker link (serve's row, heartbeat-checked): a board of doors all
    # "online" means nothing when the office itself is cut off from the broker.
    link = {
        "connected": any(link["state"] == "connected" for link in links),
        "instances": links,
        "lines": instances.describe_all(links),
    }
    return {"version": latest, "doors": doors, "online": online, "office": link}
