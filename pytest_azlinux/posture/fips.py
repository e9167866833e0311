"""FIPS: /proc/sys/crypto/fips_enabled and an active fips or SymCrypt OpenSSL provider."""

from __future__ import annotations

from dataclasses import dataclass

from ..profiles.model import Profile
from .findings import Finding


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    status: str

    @property
    def is_fips(self) -> bool:
        text = f"{self.id} {self.name}".lower()
        return "fips" in text or "symcrypt" in text


def parse_providers(text: str) -> list[Provider]:
    """Parse ``openssl list -providers`` (OpenSSL 3): an id line, then indented key: value."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == "Providers:":
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= 2 and ":" not in stripped:
            blocks.append({"id": stripped})
        elif blocks:
            key, _, value = stripped.partition(":")
            blocks[-1].setdefault(key.strip(), value.strip())
    return [Provider(b["id"], b.get("name", ""), b.get("status", "")) for b in blocks]


def check_fips_enabled(fips_enabled: str | None, profile: Profile) -> list[Finding]:
    """The kernel's FIPS switch matches the profile (both ways)."""
    found = (fips_enabled or "").strip()
    want = "1" if profile.fips else "0"
    if found == want or (not profile.fips and found in ("", "0")):
        return []
    shown = found if found else "missing /proc/sys/crypto/fips_enabled"
    return [Finding("fips.fips_enabled", want, shown, profile.source("fips"))]


def check_fips_provider(providers_output: str, profile: Profile) -> list[Finding]:
    """An active fips or symcrypt provider (AgentBaker e2e ValidateFIPSProvider)."""
    providers = parse_providers(providers_output)
    if any(p.is_fips and p.status == "active" for p in providers):
        return []
    found = ", ".join(f"{p.id} ({p.status or 'no status'})" for p in providers) or "no providers"
    return [
        Finding(
            "fips.openssl_provider",
            "an active fips or symcrypt provider",
            found,
            profile.source("fips"),
        )
    ]
