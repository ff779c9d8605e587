# Sourced by the setup scripts: installs the Debian packages that are missing, with apt, when run as
# root; otherwise fails naming them and the command. One implementation for every script.
#
#   source scripts/apt-packages.sh; ensure_apt_packages <who> pkg...
ensure_apt_packages() {
  local who="$1"; shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "$who: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "$who: missing system packages: ${missing[*]}" >&2
    echo "$who: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}
