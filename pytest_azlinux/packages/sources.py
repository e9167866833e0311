"""The reads that list every installed package, one per place an image keeps them.

Each prints one package per line (rpm, dpkg) or one ``==> PATH`` section per manifest
(SPDX); the inventory parses them (``inventory.py``). A recorded image answers the same
reads from its recording (``recorded/``), so both go through one parser.
"""

from __future__ import annotations

from ..reads import Read
from .spdx import MAX_MANIFEST_BYTES

MANIFEST_DIR = "/usr/share/os-manifests"
MANIFEST_GLOB = f"{MANIFEST_DIR}/package-manifest*.spdx.json"

# ``NAME<TAB>[EPOCH:]VERSION-RELEASE<TAB>ARCH`` per package (no epoch: no ``N:``).
RPM_ALL = Read(
    "rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n' "
    "2>/dev/null"
)
# ``PACKAGE<TAB>VERSION<TAB>ARCH<TAB>STATUS`` per package dpkg knows (installed: ``ii``).
DPKG_ALL = Read(
    "dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n' "
    "2>/dev/null"
)
# ``==> PATH`` then the file's JSON, per manifest; no manifest: exit 3. A file is sent up to
# one byte past the size a manifest may have: a larger one is refused by its size, whole.
SPDX_MANIFESTS = Read(
    f"found=; for f in {MANIFEST_GLOB}; do [ -e \"$f\" ] || continue; found=1; "
    f"printf '==> %s\\n' \"$f\"; head -c {MAX_MANIFEST_BYTES + 1} -- \"$f\" || exit 4; echo; "
    "done; [ -n \"$found\" ] || exit 3"
)
