#!/usr/bin/env bash
# One command for a fresh machine. Idempotent: re-running only does what is missing.
#   scripts/setup.sh demo   install, then run `edgegate demo` (no hardware, no broker)
#   scripts/setup.sh test   install everything the tests need (mosquitto too), then run them
#   scripts/setup.sh install  just install (venv in .venv)
set -euo pipefail
# shellcheck source=scripts/debs.sh
. "$(dirname "$0")/debs.sh"
cd "$(dirname "$0")/.."
MODE="${1:-demo}"
shift || true
VENV="${EDGEGATE_VENV:-.venv}"
PY="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

APT_UPDATED=""
apt_install() {
  # Install Debian packages that are missing; apt-get update once per run, only if needed.
  local missing
  read -r -a missing <<< "$(missing_debs "$@")"
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    say "not a Debian system: please install ${missing[*]} yourself"; return 1
  fi
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_python() {
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "edgegate needs Python 3.11 or newer ($PY is $("$PY" --version 2>&1))"; exit 1
  fi
  if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
}

ensure_venv() {
  ensure_python
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.edgegate-installed" want
  want="$1:$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  say "installing edgegate and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The face stack: dlib-bin is the prebuilt dlib; face_recognition itself goes in with
  # --no-deps, or pip would try to compile dlib from source.
  "$VENV/bin/python" -m pip install -q -e ".[$1]"
  "$VENV/bin/python" -m pip install -q --no-deps "face_recognition==1.3.0"
  "$VENV/bin/python" -c 'import face_recognition, edgegate' >/dev/null
  echo "$want" > "$stamp"
}

case "$MODE" in
  install)
    ensure_venv face,osdp,office
    say "installed: $VENV/bin/edgegate"
    ;;
  demo)
    # The whole site: a real broker, the office with its console, three simulated doors.
    # (`edgegate demo --door` is the door on its own.)
    apt_install mosquitto
    ensure_venv face,osdp,office
    say "running edgegate demo --site (Ctrl-C stops it)"
    exec "$VENV/bin/edgegate" demo --site "$@"
    ;;
  test)
    # mosquitto: the MQTT tests run a real broker on 127.0.0.1; systemd: systemd-analyze
    # verifies the unit file; faketime: libfaketime steps the door's wall clock; chromium +
    # chromium-driver: the console's browser tests; postgresql: the office tests run on a
    # real PostgreSQL too (initdb into a temp dir, edgegate/sim/postgres.py); strace: the
    # power-cut test counts the store's fsyncs per commit.
    apt_install mosquitto systemd faketime chromium chromium-driver postgresql strace
    ensure_venv face,osdp,office,dev
    say "ruff"
    "$VENV/bin/ruff" check edgegate tests bench scripts
    "$VENV/bin/ruff" format --check edgegate tests bench scripts
    # The layer rules (pyproject.toml [tool.importlinter], docs/architecture.md) and the types
    # of the whole package ([tool.mypy]): checked, not hoped.
    say "import layers"
    "$VENV/bin/lint-imports"
    say "mypy"
    "$VENV/bin/mypy"
    # Two workers (pytest-xdist): the slow end-to-end scenarios (broker kills, real office
    # and doors, the browser) run beside the fast ones, which halves the suite on CI's two
    # cores. Every test uses free ports and its own temp dirs, so they may run in parallel.
    say "running the test suite"
    exec "$VENV/bin/python" -m pytest -n "${EDGEGATE_TEST_WORKERS:-2}" "$@"
    ;;
  *)
    echo "usage: $0 demo|test|install [args...]" >&2; exit 2
    ;;
esac
