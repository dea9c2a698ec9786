"""One canonical form for a Wiegand-format card: a GPIO Wiegand reader, an OSDP reader's raw
bits (parity included), enrolment by the OSDP value (``--card 2F764DD``) and by facility code
and card number (``--wiegand 26:FC:CN``) all name the same credential; stored raw forms are
migrated."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edgegate.core.wiegand_card import canonical_card
from edgegate.hardware.osdp_codec import FMT_RAW_WIEGAND, card_value
from edgegate.hardware.wiegand.formats import Card, decode, encode_card, wiegand_to_uid
from edgegate.store.credentials import normalise_card
from edgegate.store.db import MIGRATIONS, open_db


def _pack(frame: list[int]) -> bytes:
    bits = "".join(map(str, frame))
    padded = bits + "0" * (-len(bits) % 8)
    return int(padded, 2).to_bytes(len(padded) // 8, "big")


def _raw_hex(frame: list[int]) -> str:
    return f"{int(''.join(map(str, frame)), 2):0{(len(frame) + 3) // 4}X}"


cards = st.one_of(
    st.tuples(st.just(26), st.integers(0, 255), st.integers(0, 65535)),
    st.tuples(st.just(34), st.integers(0, 65535), st.integers(0, 65535)),
)


@given(cards)
def test_every_reader_and_every_enrolment_names_the_same_card(card):
    bits, fc, cn = card
    frame = encode_card(bits, fc, cn)
    gpio = decode(frame)
    assert isinstance(gpio, Card)
    osdp = card_value(FMT_RAW_WIEGAND, _pack(frame), bits)
    enrolled_raw = normalise_card(_raw_hex(frame))  # what the OSDP journal showed
    enrolled_fc_cn = normalise_card(wiegand_to_uid(f"{bits}:{fc}:{cn}"))
    assert gpio.value == osdp == enrolled_raw == enrolled_fc_cn


def test_the_issue_example():
    # OSDP journaled 2F764DD (26 bits, parity included): facility 123, card 45678.
    assert normalise_card("2F764DD") == wiegand_to_uid("26:123:45678") == "7BB26E"


@given(st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=12))
def test_canonical_form_is_stable(value: str):
    once = canonical_card(value)
    assert canonical_card(once) == once or len(once) in (7, 9)


def test_stored_raw_forms_are_migrated(tmp_path: Path):
    db = tmp_path / "door.db"
    old = open_db(db, migrations=MIGRATIONS)  # schema only, as a store of the last release
    old.execute("DELETE FROM meta WHERE key = 'migrated_wiegand_card_forms'")
    old.execute("INSERT INTO people(id, updated_at) VALUES ('p', 0)")
    for value in ("2F764DD", "0020002", "DEADBEEF"):  # raw 26-bit, bad parity, a UID
        old.execute(
            "INSERT INTO credentials(kind, value, person_id, updated_at) VALUES ('card',?,'p',0)",
            (value,),
        )
    old.close()
    conn = open_db(db)
    values = {r[0] for r in conn.execute("SELECT value FROM credentials")}
    assert values == {"7BB26E", "0020002", "DEADBEEF"}
    assert conn.execute(
        "SELECT value FROM meta WHERE key = 'migrated_wiegand_card_forms'"
    ).fetchone() == ("1",)
    conn.close()
