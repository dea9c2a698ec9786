import re
import subprocess
from pathlib import Path

from tests.conftest import EDGEGATE, REPO


def test_demo_runs_end_to_end_and_leaves_nothing(subprocess_env):
    r = subprocess.run(
        [*EDGEGATE, "demo", "--speed", "8"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "ACCESS GRANTED  alice" in out
    assert "reason=unknown" in out and "reason=revoked" in out and "reason=expired" in out
    assert "relay: UNLOCKED" in out and "relay: locked" in out and "buzzer on" in out
    assert "'bad_checksum': 1" in out
    assert "ACCESS GRANTED  bob" in out and out.count("ACCESS GRANTED  bob") == 1
    assert out.count("ACCESS GRANTED  erin (card 04A1B2C3D4E5F6)") == 1  # PN532, counted once
    assert "relay after stop: locked" in out
    store = re.search(r"store (\S+edgegate\.db)", out)
    assert store, out
    assert not Path(store.group(1)).parent.exists()
