"""The boot chain: Secure Boot, a TPM, the unified kernel image that booted, ``usrhash=``.

What each check reads, and why there:

- Secure Boot: the UEFI global variable ``SecureBoot`` (efivarfs: 4 attribute bytes, then one
  data byte, 1 = enabled). No ``/sys/firmware/efi`` means the host booted through BIOS: Secure
  Boot is then off, a finding where the profile expects it, not an error. A firmware that
  does not know Secure Boot has no such variable (also off). An efivarfs that is not mounted
  or cannot be read, or a variable that is not 5 bytes long, is an ERROR: nothing was learnt.
- UKI: systemd-stub, the EFI stub of a unified kernel image, sets ``StubInfo``; systemd-boot
  names the entry it started in ``LoaderEntrySelected`` and its own image in
  ``LoaderImageIdentifier`` (vendor GUID 4a67b082-..., UTF-16LE strings). ``StubInfo`` is the
  proof a UKI booted; the entry says which one.
- TPM: ``/sys/class/tpm/tpmN`` (with ``tpm_version_major``) or the ``/dev/tpmrm0`` node.
- ``usrhash=``: the host's kernel command line (its facts).

The variables are read with ``od`` (hex), so binary values survive the text framing.
Sources: UEFI 2.10 section 3.3 (globally defined variables), the kernel's efivarfs
documentation (Documentation/filesystems/efivarfs.rst: the 4 attribute bytes),
systemd's docs/BOOT_LOADER_INTERFACE.md (the Loader*/Stub* variables and their GUID).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ProbeUnavailable
from ..host import Host
from ..profiles.model import Profile
from ..reads import Read, split_sections
from .findings import Finding

GLOBAL_GUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"  # EFI_GLOBAL_VARIABLE
LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"  # systemd-boot / systemd-stub
SECURE_BOOT = f"SecureBoot-{GLOBAL_GUID}"
LOADER_VARS = tuple(
    f"{name}-{LOADER_GUID}"
    for name in ("LoaderEntrySelected", "LoaderImageIdentifier", "StubInfo", "LoaderInfo")
)
EFIVARS = "/sys/firmware/efi/efivars"
# exit 3: no /sys/firmware/efi (BIOS boot); exit 4: efivarfs not mounted
EFI_VARS = Read(
    "[ -d /sys/firmware/efi ] || exit 3\n"
    f"grep -qs ' {EFIVARS} efivarfs ' /proc/self/mounts || exit 4\n"
    f"for n in {SECURE_BOOT} {' '.join(LOADER_VARS)}; do\n"
    f'  f={EFIVARS}/$n; [ -e "$f" ] || continue\n'
    "  printf '==> %s\\n' \"$n\"\n"
    '  od -An -tx1 -v "$f" || printf \'unreadable\\n\'\n'
    "done"
)
# exit 3: no sysfs class directory at all (sysfs not mounted)
TPM = Read(
    "[ -d /sys/class ] || exit 3\n"
    "for t in /sys/class/tpm/tpm[0-9]*; do [ -e \"$t\" ] || continue\n"
    "  printf 'class %s %s\\n' \"${t##*/}\" \"$(cat \"$t/tpm_version_major\" 2>/dev/null)\"; done\n"
    "for d in /dev/tpmrm[0-9]* /dev/tpm[0-9]*; do\n"
    "  [ -e \"$d\" ] && printf 'dev %s\\n' \"$d\"; done\n"
    "exit 0"
)
READS = (EFI_VARS, TPM)
USRHASH = re.compile(r"^usrhash=([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$")


@dataclass(frozen=True)
class EfiState:
    """What the firmware showed: ``booted_efi`` False is a BIOS boot (no variables)."""

    booted_efi: bool
    variables: dict[str, bytes]  # name (without GUID) -> data (attributes stripped)

    @property
    def secure_boot(self) -> bool:
        return self.variables.get("SecureBoot") == b"\x01"

    def text(self, name: str) -> str | None:
        """A systemd loader variable as text (UTF-16LE, NUL-terminated), None if absent."""
        data = self.variables.get(name)
        return None if data is None else data.decode("utf-16-le", "replace").rstrip("\x00")


def parse_efi_vars(text: str, source: str = EFIVARS) -> dict[str, bytes]:
    """``==> NAME-GUID`` sections of ``od -An -tx1 -v`` hex; each value without its 4
    attribute bytes. Raises ValueError naming the variable that is unreadable or garbled."""
    out: dict[str, bytes] = {}
    for full, section in split_sections(text).items():
        name = full.rsplit("-", 5)[0]  # NAME-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
        body = section.text
        if body == "unreadable":
            raise ValueError(f"{source}/{full}: cannot be read")
        words = body.split()
        if not all(re.fullmatch(r"[0-9a-f]{2}", w) for w in words):
            raise ValueError(f"{source}/{full}: not od hex output: {body[:60]!r}")
        raw = bytes(int(w, 16) for w in words)
        if len(raw) < 5:
            raise ValueError(f"{source}/{full}: {len(raw)} bytes, shorter than the 4 "
                             "attribute bytes and a value")
        out[name] = raw[4:]
    secure = out.get("SecureBoot")
    if secure is not None and secure not in (b"\x00", b"\x01"):
        raise ValueError(f"{source}/{SECURE_BOOT}: value {secure.hex()} is not 0 or 1")
    return out


def efi_state(host: Host) -> EfiState:
    result = host.reads.get(EFI_VARS)
    if result.rc == 3:
        return EfiState(False, {})
    if result.rc == 4:
        raise ProbeUnavailable(f"{host.name}: /sys/firmware/efi exists but efivarfs is not "
                               f"mounted on {EFIVARS}: cannot read the Secure Boot state")
    if result.rc != 0:
        raise ProbeUnavailable(f"{host.name}: reading {EFIVARS} failed (exit {result.rc}): "
                               f"{result.stderr.strip()[:200]}")
    try:
        return EfiState(True, parse_efi_vars(result.stdout))
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def check_secure_boot(efi: EfiState, profile: Profile) -> list[Finding]:
    src = profile.source("secure_boot")
    if not efi.booted_efi:
        return [Finding("secure_boot", "Secure Boot enabled",
                        "booted through BIOS (no /sys/firmware/efi): no Secure Boot", src)]
    if "SecureBoot" not in efi.variables:
        return [Finding("secure_boot", "Secure Boot enabled",
                        f"no {SECURE_BOOT} variable: the firmware has no Secure Boot", src)]
    if not efi.secure_boot:
        return [Finding("secure_boot", "Secure Boot enabled",
                        f"disabled ({SECURE_BOOT} = 0)", src)]
    return []


@dataclass(frozen=True)
class UkiBoot:
    """How the running kernel was started, from the loader variables."""

    stub: str | None  # StubInfo: set by systemd-stub, i.e. a UKI booted
    entry: str | None  # LoaderEntrySelected: the boot entry (the UKI's file name for type #2)
    loader: str | None  # LoaderInfo
    image: str | None  # LoaderImageIdentifier

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("entry", self.entry), ("stub", self.stub),
                                          ("loader", self.loader), ("image", self.image)) if v]
        return ", ".join(parts) or "no systemd-boot or systemd-stub variables"


def uki_boot(efi: EfiState) -> UkiBoot:
    return UkiBoot(efi.text("StubInfo"), efi.text("LoaderEntrySelected"),
                   efi.text("LoaderInfo"), efi.text("LoaderImageIdentifier"))


def check_uki(efi: EfiState, profile: Profile) -> list[Finding]:
    src = profile.source("uki")
    if not efi.booted_efi:
        return [Finding("uki", "booted from a unified kernel image (StubInfo set by systemd-stub)",
                        "booted through BIOS (no /sys/firmware/efi)", src)]
    boot = uki_boot(efi)
    if boot.stub is None:
        return [Finding("uki", "booted from a unified kernel image (StubInfo set by systemd-stub)",
                        f"no StubInfo variable: {boot.describe()}", src)]
    return []


def usrhash(cmdline: list[str] | tuple[str, ...]) -> str | None:
    """The ``usrhash=`` value on the command line (the last one, as the initrd reads it)."""
    found = [t.partition("=")[2] for t in cmdline if t.startswith("usrhash=")]
    return found[-1] if found else None


def check_usrhash(cmdline: list[str] | tuple[str, ...], profile: Profile) -> list[Finding]:
    src = profile.source("usrhash")
    value = usrhash(cmdline)
    if value is None:
        return [Finding("usrhash", "usrhash=<root hash of /usr> on the kernel command line",
                        "no usrhash= in /proc/cmdline", src)]
    if not USRHASH.match(f"usrhash={value}"):
        return [Finding("usrhash", "usrhash= a hex root hash (sha256 or sha512)",
                        f"usrhash={value}", src)]
    return []


@dataclass(frozen=True)
class TpmEvidence:
    devices: tuple[tuple[str, str], ...]  # (tpm0, major version or "")
    nodes: tuple[str, ...]  # /dev/tpmrm0, /dev/tpm0

    def describe(self) -> str:
        found = [f"/sys/class/tpm/{n}" + (f" (TPM {v}.x)" if v else "") for n, v in self.devices]
        return ", ".join(found + list(self.nodes)) or "no /sys/class/tpm/tpm* and no /dev/tpm*"


def parse_tpm(text: str) -> TpmEvidence:
    devices: list[tuple[str, str]] = []
    nodes: list[str] = []
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "class" and rest:
            name, _, version = rest.partition(" ")
            devices.append((name, version.strip()))
        elif kind == "dev" and rest:
            nodes.append(rest.strip())
        elif line.strip():
            raise ValueError(f"unexpected line in the TPM read: {line[:80]!r}")
    return TpmEvidence(tuple(devices), tuple(nodes))


def tpm(host: Host) -> TpmEvidence:
    result = host.reads.get(TPM)
    if result.rc != 0:
        raise ProbeUnavailable(f"{host.name}: cannot read /sys/class (sysfs not mounted?): "
                               f"exit {result.rc}")
    try:
        return parse_tpm(result.stdout)
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def check_tpm(evidence: TpmEvidence, profile: Profile) -> list[Finding]:
    if evidence.devices or any("tpmrm" in n for n in evidence.nodes):
        return []
    return [Finding("tpm", "a TPM (/sys/class/tpm/tpm0 or /dev/tpmrm0)", evidence.describe(),
                    profile.source("tpm"))]
