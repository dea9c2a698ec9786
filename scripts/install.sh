#!/usr/bin/env bash
# Install edgegate on a door: Raspberry Pi OS (Debian bookworm) or newer. Run as root from a
# checkout (or an unpacked release):
#
#   sudo ./scripts/install.sh            # card and fingerprint door
#   sudo ./scripts/install.sh --face     # plus the face stack (prebuilt dlib, never compiled)
#   ./scripts/install.sh --root DIR      # stage into DIR (tests): no apt, nothing started; the
#                                        # user only if DIR has etc/passwd; venv for THIS machine
#
# Idempotent: a second run with the same source changes nothing. What it does: Debian packages,
# the `edgegate` system user (groups gpio, dialout, video, input), a venv in /opt/edgegate/venv with
# this checkout installed into it, /etc/edgegate/edgegate.toml from the example if there is
# none, /etc/edgegate/credentials/ for the unit's LoadCredential= files, the systemd unit,
# enabled (not started: configure first). It prints what to do next.
set -euo pipefail
# shellcheck source=scripts/debs.sh
. "$(dirname "$0")/debs.sh"

SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROOT=""
FACE=""
PY="${PYTHON:-python3}"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --root=*) ROOT="$(mkdir -p "${1#*=}" && cd "${1#*=}" && pwd)"; shift ;;
    --face) FACE=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

OPT="$ROOT/opt/edgegate"
VENV="$OPT/venv"
ETC="$ROOT/etc/edgegate"
UNIT_DIR="$ROOT/etc/systemd/system"
CHANGED=0

say() { printf '==> %s\n' "$*" >&2; }
did() { CHANGED=1; say "$*"; }

check_os() {
  local id="" version=""
  if [ -r /etc/os-release ]; then
    id="$(. /etc/os-release && echo "${ID:-}")"
    version="$(. /etc/os-release && echo "${VERSION_ID:-0}")"
  fi
  if [ "${version%%.*}" -lt 12 ] 2>/dev/null || [ -z "$version" ]; then
    say "warning: made for Raspberry Pi OS / Debian 12 (bookworm) or newer; this is ${id:-unknown} ${version:-?}"
  fi
}

apt_install() {
  local missing
  read -r -a missing <<< "$(missing_debs "$@")"
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -n "$ROOT" ]; then
    say "staging into $ROOT: not installing Debian packages ${missing[*]}"
    return 0
  fi
  did "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

debian_packages() {
  local pkgs=(python3-venv)
  # lgpio is gpiozero's pin factory on bookworm (and the only one on a Pi 5); Raspberry Pi OS
  # ships it as python3-lgpio, which the venv sees through --system-site-packages.
  if apt-cache show python3-lgpio >/dev/null 2>&1; then pkgs+=(python3-lgpio); fi
  apt_install "${pkgs[@]}"
}

# Users and groups, on this system or in the staged root's own /etc (an SD card image).
in_root() { [ -n "$ROOT" ]; }
group_exists() {
  if in_root; then grep -q "^$1:" "$ROOT/etc/group"; else getent group "$1" >/dev/null; fi
}
user_exists() {
  if in_root; then grep -q "^edgegate:" "$ROOT/etc/passwd"; else id edgegate >/dev/null 2>&1; fi
}
user_in_group() {
  if in_root; then
    grep "^$1:" "$ROOT/etc/group" | cut -d: -f4 | tr ',' '\n' | grep -qx edgegate
  else
    id -nG edgegate | tr ' ' '\n' | grep -qx "$1"
  fi
}

ensure_user() {
  if in_root && [ ! -f "$ROOT/etc/passwd" ]; then
    say "staging into $ROOT: no etc/passwd there, not creating the edgegate user"
    return 0
  fi
  local group rootopt=()
  if in_root; then rootopt=(--root "$ROOT"); fi
  for group in gpio dialout video input; do
    group_exists "$group" \
      || { groupadd "${rootopt[@]}" --system "$group"; did "created group $group"; }
  done
  if ! user_exists; then
    useradd "${rootopt[@]}" --system --user-group --home-dir /var/lib/edgegate \
      --no-create-home --shell /usr/sbin/nologin --comment "edgegate door daemon" edgegate
    did "created system user edgegate"
  fi
  for group in gpio dialout video input; do
    user_in_group "$group" \
      || { usermod "${rootopt[@]}" -aG "$group" edgegate; did "added edgegate to $group"; }
  done
}

source_stamp() {
  # What is being installed: the package's files and the chosen extras. Unchanged stamp,
  # nothing to reinstall.
  (cd "$SRC" && find edgegate setup.cfg pyproject.toml README.md -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -c1-32
  echo "face=${FACE:-0}"
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$OPT"
    "$PY" -m venv --system-site-packages "$VENV"
    did "created $VENV"
  fi
  local stamp="$VENV/.edgegate-source" want
  want="$(source_stamp)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "edgegate in $VENV is up to date"
    return 0
  fi
  did "installing edgegate from $SRC into $VENV"
  # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds, and a
  # stale build/lib would carry deleted modules into the next install.
  local tree
  tree="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: the variable is local
  trap "rm -rf '$tree'" EXIT
  (cd "$SRC" && cp -r edgegate setup.cfg pyproject.toml README.md "$tree/")
  find "$tree" -name __pycache__ -prune -exec rm -rf {} +
  "$VENV/bin/python" -m pip install -q "$tree${FACE:+[face]}"
  if [ -n "$FACE" ]; then
    # face_recognition without its dependencies: its dlib requirement would compile dlib from
    # source for an hour; dlib-bin (in the face extra) is the prebuilt module.
    "$VENV/bin/python" -m pip install -q --no-deps "face_recognition==1.3.0"
    "$VENV/bin/python" -c 'import face_recognition' >/dev/null
  fi
  "$VENV/bin/edgegate" --version >/dev/null
  echo "$want" > "$stamp"
}

install_file() {
  # install_file MODE SRC DEST: copy when missing or different, say so; else leave it alone.
  local mode="$1" from="$2" to="$3"
  if [ -f "$to" ] && cmp -s "$from" "$to"; then return 0; fi
  install -D -m "$mode" "$from" "$to"
  did "installed $to"
}

ensure_files() {
  install_file 0644 "$SRC/systemd/edgegate.service" "$UNIT_DIR/edgegate.service"
  local doc
  for doc in "$SRC"/docs/*.md; do install_file 0644 "$doc" "$OPT/docs/$(basename "$doc")"; done
  install_file 0644 "$SRC/config/edgegate.example.toml" "$ETC/edgegate.example.toml"
  if [ ! -e "$ETC/edgegate.toml" ]; then
    install -m 0640 "$SRC/config/edgegate.example.toml" "$ETC/edgegate.toml"
    did "created $ETC/edgegate.toml from the example"
  fi
  local gid
  gid="$(awk -F: '$1 == "edgegate" { print $3 }' "$ROOT/etc/group" 2>/dev/null)"
  if [ -n "$gid" ] && [ "$(stat -c %g "$ETC/edgegate.toml")" != "$gid" ]; then
    chgrp "$gid" "$ETC/edgegate.toml"
    did "made $ETC/edgegate.toml readable by group edgegate"
  fi
  if [ ! -d "$ETC/credentials" ]; then
    install -d -m 0700 "$ETC/credentials"
    did "created $ETC/credentials (root only; the unit's LoadCredential= files)"
  fi
  mkdir -p "$ROOT/usr/local/bin"
  if [ "$(readlink "$ROOT/usr/local/bin/edgegate" 2>/dev/null)" != /opt/edgegate/venv/bin/edgegate ]; then
    ln -sfn /opt/edgegate/venv/bin/edgegate "$ROOT/usr/local/bin/edgegate"
    did "linked /usr/local/bin/edgegate"
  fi
}

enable_unit() {
  if [ -n "$ROOT" ]; then
    # systemctl --root works offline: it only creates the [Install] symlinks.
    if [ ! -L "$UNIT_DIR/multi-user.target.wants/edgegate.service" ]; then
      if command -v systemctl >/dev/null; then
        systemctl --root="$ROOT" enable edgegate.service >/dev/null 2>&1
        did "enabled edgegate.service in $ROOT"
      else
        say "no systemctl here: enable edgegate.service on the door"
      fi
    fi
    return 0
  fi
  if [ ! -d /run/systemd/system ]; then
    say "systemd is not running here: enable edgegate.service once it is"
    return 0
  fi
  systemctl daemon-reload
  if ! systemctl is-enabled --quiet edgegate.service; then
    systemctl enable edgegate.service >/dev/null 2>&1
    did "enabled edgegate.service (starts at boot)"
  fi
}

main() {
  if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or stage with --root DIR" >&2
    exit 1
  fi
  check_os
  debian_packages
  ensure_user
  ensure_venv
  ensure_files
  enable_unit
  if [ "$CHANGED" -eq 0 ]; then say "nothing to do: edgegate is installed and up to date"; fi
  cat <<EOF

edgegate is installed${ROOT:+ in $ROOT}. Next:
  1. Edit /etc/edgegate/edgegate.toml (site, door id, pins, readers, broker);
     every key is in /opt/edgegate/docs/config.md, the wiring in wiring.md.
  2. Check it:        edgegate check-config /etc/edgegate/edgegate.toml
  3. Put secrets in /etc/edgegate/credentials/ (root only, e.g. mqtt-password,
     central-public-key, store-key: head -c 32 /dev/urandom > .../store-key).
  4. Test the parts:  sudo -u edgegate edgegate doctor --config /etc/edgegate/edgegate.toml
  5. Start the door:  systemctl start edgegate && journalctl -u edgegate -f
EOF
}

main
