"""sshd: present or not as the profile says; ClientAliveInterval as Microsoft LISA checks."""

from __future__ import annotations

from ..profiles.model import Profile
from .findings import Finding

# Sets $conf to the config file the running sshd was started with (its -f), the way
# both the hardening controls and the image suite read effective sshd settings.
LISTENER_CONFIG = r"""conf=/etc/ssh/sshd_config
mnt=$(readlink /proc/self/ns/mnt)
for c in $(grep -lx sshd /proc/[0-9]*/comm 2>/dev/null | sort -t/ -k3 -n); do  # oldest first
  d=${c%/comm}; [ "$(readlink "$d/ns/mnt")" = "$mnt" ] || continue  # a container's sshd
  pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
  [ "$(cat "/proc/$pp/comm" 2>/dev/null)" = sshd ] && continue
  set -- $(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
  while [ $# -gt 0 ]; do
    case "$1" in -f) [ $# -gt 1 ] && conf=$2 ;; -f?*) conf=${1#-f} ;; esac; shift
  done
  break
done"""


def parse_sshd_t(text: str) -> dict[str, str]:
    """``sshd -T`` output: one lower-case ``key value`` per line (first wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            out.setdefault(key.lower(), value.strip())
    return out


def parse_sshd_config(text: str) -> dict[str, str]:
    """sshd_config keywords (case-insensitive, first value wins as in sshd; no Include/Match)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        if key.lower() == "match":
            break  # everything after Match is conditional
        out.setdefault(key.lower(), value.strip())
    return out


def check_sshd_presence(binary: str | None, running: bool, profile: Profile) -> list[Finding]:
    src = profile.source("sshd")
    if profile.sshd:
        if binary and running:
            return []
        found = f"binary {binary or 'missing'}, {'running' if running else 'not running'}"
        return [Finding("sshd", "sshd installed and running", found, src)]
    if running:
        return [Finding("sshd", "no sshd running", f"sshd running ({binary})", src)]
    return []


def check_client_alive_interval(
    settings: dict[str, str], origin: str, profile: Profile
) -> list[Finding]:
    """LISA verify_client_active_interval: set, and within the profile's range."""
    assert profile.sshd_client_alive_interval is not None
    low, high = profile.sshd_client_alive_interval
    src = profile.source("sshd_client_alive_interval")
    raw = settings.get("clientaliveinterval")
    expected = f"ClientAliveInterval between {low} and {high}"
    if raw is None:
        return [Finding("sshd.ClientAliveInterval", expected, f"not set ({origin})", src)]
    try:
        value = int(raw)
    except ValueError:
        return [Finding("sshd.ClientAliveInterval", expected, f"{raw!r} ({origin})", src)]
    if low <= value <= high:
        return []
    return [Finding("sshd.ClientAliveInterval", expected, f"{value} ({origin})", src)]
