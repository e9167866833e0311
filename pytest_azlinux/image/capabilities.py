"""azldev's image capabilities and the suites they make applicable.

``azldev image test`` substitutes ``{capabilities}`` with the comma-separated capabilities
enabled on the image (``[images.NAME.capabilities]`` in azldev.toml). A suite needs the
capabilities listed here for its marker; with ``--azl-capabilities``, a test whose suite
needs one the image lacks is skipped, with the reason, so the report says why it did not run.
An empty list means the image declared none: nothing is skipped (azldev's capabilities are
tri-state; unset is not "disabled").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from ..errors import ConfigError

CAPABILITIES = ("machine-bootable", "container", "systemd", "runtime-package-management")

# What each suite needs of the image. Every suite here looks at a booted machine over SSH;
# the SELinux suite also reads the journal and auditd, which need systemd as init.
SUITE_NEEDS: dict[str, tuple[str, ...]] = {
    "azl_image": ("machine-bootable",),
    "azl_network": ("machine-bootable",),
    "azl_storage": ("machine-bootable",),
    "azl_escape": ("machine-bootable",),
    "azl_selinux": ("machine-bootable", "systemd"),
}


def parse_capabilities(text: str | None) -> frozenset[str] | None:
    """``machine-bootable,systemd`` -> a set; None when not given or empty (nothing known)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        return None
    unknown = [n for n in names if n not in CAPABILITIES]
    if unknown:
        raise ConfigError(
            f"--azl-capabilities: unknown capability {unknown[0]!r} "
            f"(known: {', '.join(CAPABILITIES)})"
        )
    return frozenset(names)


def missing(markers: Iterable[str], have: frozenset[str]) -> list[str]:
    """The capabilities the suites of ``markers`` need and the image does not have."""
    out: list[str] = []
    for marker in markers:
        for need in SUITE_NEEDS.get(marker, ()):
            if need not in have and need not in out:
                out.append(need)
    return out


def apply_capabilities(items: Sequence[pytest.Item], text: str | None) -> None:
    """Skip, with the reason, every test whose suite needs a capability the image lacks."""
    have = parse_capabilities(text)
    if have is None:
        return
    listed = ", ".join(sorted(have))
    for item in items:
        lacking = missing((m.name for m in item.iter_markers()), have)
        if lacking:
            item.add_marker(pytest.mark.skip(
                reason=f"not applicable: the suite needs capability {', '.join(lacking)}; "
                f"the image has {listed}"
            ))  # fmt: skip
