# Sourced by setup.sh and install.sh: which Debian packages of a list are not installed yet.
# missing_debs PKG...  prints the missing ones, space-separated (nothing when all are there).
missing_debs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  echo "${missing[*]}"
}
