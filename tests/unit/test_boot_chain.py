"""The new images' checks on recorded and real output: efivars, TPM, UKI, usrhash, the /usr
A/B slot, system extensions, SELinux policy name, IPE mode, the module blacklist.

Where the command exists on this machine, the read's own script runs here and its real
output is parsed (no EFI, no TPM, no device-mapper, systemd-sysext 252); the sysext outputs
with extensions merged are recordings (tests/data/boot/README.md). Bytes of EFI variables are
laid out as the kernel documents efivarfs (Documentation/filesystems/efivarfs.rst: 4 bytes of
attributes, little-endian, then the data) and turned into text by the real ``od``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_azlinux.errors import ProbeUnavailable
from pytest_azlinux.posture import boot, module_blacklist, sysext, verity_ab
from pytest_azlinux.posture.osguard import check_ipe_mode, ipe_mode
from pytest_azlinux.posture.selinux import check_selinux_policy
from pytest_azlinux.profiles import Profile, load_profiles
from pytest_azlinux.selinux.mode import selinux_state

DATA = Path(__file__).resolve().parents[1] / "data" / "boot"
ATTR_BS_RT = bytes([0x06, 0, 0, 0])  # EFI_VARIABLE_BOOTSERVICE_ACCESS | RUNTIME_ACCESS
ATTR_NV_BS_RT = bytes([0x07, 0, 0, 0])
HASH = "7904edf746ade3637d639ae64d5298f531f7422da3d940f77eddcec8ef87bd3d"


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def base() -> Profile:
    return load_profiles().get("azl-3.0")


def expecting(profile: Profile, **values: object) -> Profile:
    sources = dict(profile.sources) | {k: f"test: {k}" for k in values}
    return profile.model_copy(update={**values, "sources": sources})


def od(tmp_path: Path, variables: dict[str, bytes]) -> str:
    """The EFI_VARS read's text for these variable files, through the real od."""
    out = []
    for name, data in variables.items():
        path = tmp_path / name
        path.write_bytes(data)
        hexed = _sh(f"od -An -tx1 -v {path}").stdout
        out.append(f"==> {name}\n{hexed}")
    return "".join(out)


def utf16(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


# -- Secure Boot, UKI ----------------------------------------------------------------------


def test_secure_boot_enabled_and_the_uki_that_booted(tmp_path: Path, base: Profile) -> None:
    text = od(tmp_path, {
        boot.SECURE_BOOT: ATTR_BS_RT + b"\x01",
        f"LoaderEntrySelected-{boot.LOADER_GUID}": ATTR_BS_RT + utf16("azurelinux-6.6.150.efi"),
        f"StubInfo-{boot.LOADER_GUID}": ATTR_BS_RT + utf16("systemd-stub 255.13"),
        f"LoaderImageIdentifier-{boot.LOADER_GUID}": ATTR_BS_RT + utf16(r"\EFI\BOOT\BOOTX64.EFI"),
    })
    efi = boot.EfiState(True, boot.parse_efi_vars(text))
    profile = expecting(base, secure_boot=True, uki=True)
    assert efi.secure_boot
    assert boot.check_secure_boot(efi, profile) == []
    assert boot.check_uki(efi, profile) == []
    assert boot.uki_boot(efi).entry == "azurelinux-6.6.150.efi"
    assert boot.uki_boot(efi).stub == "systemd-stub 255.13"


def test_secure_boot_disabled_and_no_stub_are_findings(tmp_path: Path, base: Profile) -> None:
    text = od(tmp_path, {
        boot.SECURE_BOOT: ATTR_BS_RT + b"\x00",
        f"LoaderInfo-{boot.LOADER_GUID}": ATTR_BS_RT + utf16("systemd-boot 255.13"),
    })
    efi = boot.EfiState(True, boot.parse_efi_vars(text))
    profile = expecting(base, secure_boot=True, uki=True)
    [sb] = boot.check_secure_boot(efi, profile)
    assert "disabled" in sb.found and sb.source == "test: secure_boot"
    [uki] = boot.check_uki(efi, profile)
    assert "no StubInfo" in uki.found and "systemd-boot 255.13" in uki.found


def test_firmware_without_secure_boot_variable(tmp_path: Path, base: Profile) -> None:
    efi = boot.EfiState(True, boot.parse_efi_vars(""))
    [finding] = boot.check_secure_boot(efi, expecting(base, secure_boot=True))
    assert "firmware has no Secure Boot" in finding.found


@pytest.mark.parametrize("data, why", [
    (ATTR_BS_RT, "shorter than the 4 attribute bytes"),  # truncated: attributes only
    (ATTR_NV_BS_RT + b"\x02", "is not 0 or 1"),
])
def test_malformed_secure_boot_variable_is_an_error(
    tmp_path: Path, data: bytes, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        boot.parse_efi_vars(od(tmp_path, {boot.SECURE_BOOT: data}))


def test_garbage_and_unreadable_variables_are_errors() -> None:
    with pytest.raises(ValueError, match="not od hex output"):
        boot.parse_efi_vars(f"==> {boot.SECURE_BOOT}\nPermission denied\n")
    with pytest.raises(ValueError, match="cannot be read"):
        boot.parse_efi_vars(f"==> {boot.SECURE_BOOT}\nunreadable\n")


def test_the_efi_read_on_this_machine_says_bios(base: Profile) -> None:
    """This machine has no /sys/firmware/efi: exit 3, a BIOS boot, a finding (not an error)."""
    if Path("/sys/firmware/efi").exists():
        pytest.skip("this machine booted through UEFI")
    assert _sh(boot.EFI_VARS.script).returncode == 3
    [finding] = boot.check_secure_boot(boot.EfiState(False, {}), expecting(base, secure_boot=True))
    assert "BIOS" in finding.found


# -- TPM ----------------------------------------------------------------------------------


def test_tpm_read_on_this_machine_finds_none(base: Profile) -> None:
    result = _sh(boot.TPM.script)
    assert result.returncode == 0
    evidence = boot.parse_tpm(result.stdout)
    if Path("/sys/class/tpm/tpm0").exists():
        pytest.skip("this machine has a TPM")
    [finding] = boot.check_tpm(evidence, expecting(base, tpm=True))
    assert "no /sys/class/tpm/tpm*" in finding.found


def test_tpm_present_and_garbage() -> None:
    evidence = boot.parse_tpm("class tpm0 2\ndev /dev/tpmrm0\ndev /dev/tpm0\n")
    assert evidence.devices == (("tpm0", "2"),)
    assert boot.check_tpm(evidence, load_profiles().get("azl-3.0")) == []
    with pytest.raises(ValueError):
        boot.parse_tpm("tpm0 present\n")


# -- usrhash -------------------------------------------------------------------------------


def test_usrhash_on_the_command_line(base: Profile) -> None:
    profile = expecting(base, usrhash=True)
    assert boot.check_usrhash(["root=LABEL=ROOT", f"usrhash={HASH}"], profile) == []
    [missing] = boot.check_usrhash(["root=LABEL=ROOT", "ro"], profile)
    assert "no usrhash=" in missing.found
    [bad] = boot.check_usrhash(["usrhash=xyz"], profile)
    assert bad.found == "usrhash=xyz"
    # the lab's verity VM names its root hash azl.usrhash=: not the usrhash= the initrd reads
    [lab] = boot.check_usrhash(["root=LABEL=azlroot", f"azl.usrhash={HASH}"], profile)
    assert "no usrhash=" in lab.found


# -- /usr verity, A/B slot -----------------------------------------------------------------

# ``dmsetup status usr`` as drivers/md/dm-verity-target.c (verity_status, STATUSTYPE_INFO)
# prints it on 6.6 kernels: start, length (512-byte sectors), target, V|C.
VERITY_A = """==> device dm-0
==> status
0 1712128 verity V
==> ro
1
==> slave sda3
MAJOR=8
MINOR=3
DEVNAME=sda3
DEVTYPE=partition
DISKSEQ=1
PARTN=3
PARTNAME=USR-A
"""


def test_verity_slot_a_by_partition_label(base: Profile) -> None:
    usr = verity_ab.parse_usr_verity(VERITY_A)
    assert usr.slot() == ("USR-A", "PARTNAME of /dev/sda3 under /dev/dm-0")
    assert verity_ab.check_verity_ab(usr, expecting(base, verity_ab=True)) == []


def test_verity_slot_b_matched_by_label_not_number(base: Profile) -> None:
    # USR-B is partition 3 here: the label decides, never the number
    usr = verity_ab.parse_usr_verity(VERITY_A.replace("PARTNAME=USR-A", "PARTNAME=USR-B"))
    assert usr.slot()[0] == "USR-B"


def test_verity_corruption_writable_and_unknown_slot(base: Profile) -> None:
    text = (VERITY_A.replace("verity V", "verity C").replace("==> ro\n1", "==> ro\n0")
            .replace("PARTNAME=USR-A", "PARTNAME=ROOT"))
    found = verity_ab.check_verity_ab(verity_ab.parse_usr_verity(text),
                                      expecting(base, verity_ab=True))
    assert [f.check for f in found] == ["usr.verity", "usr.read_only", "usr.slot"]
    assert "corruption" in found[0].found and "PARTNAME=ROOT" in found[2].found


def test_active_volume_file_disagreeing_with_the_label(base: Profile) -> None:
    usr = verity_ab.parse_usr_verity(VERITY_A + "==> active-volume\nusr-b\n")
    [finding] = verity_ab.check_verity_ab(usr, expecting(base, verity_ab=True))
    assert finding.check == "usr.slot" and "usr-b" in finding.found


def test_no_usr_mapping_is_a_finding(base: Profile) -> None:
    [finding] = verity_ab.check_verity_ab(None, expecting(base, verity_ab=True))
    assert finding.found == "no /dev/mapper/usr"


@pytest.mark.parametrize("text, why", [
    (VERITY_A.split("==> ro")[0], "cut short"),
    (VERITY_A.replace("0 1712128 verity V", "Device usr not found\nCommand failed."),
     "expected one line"),
    (VERITY_A.replace("0 1712128 verity V", "usr verity V"), "not '<start>"),
])
def test_garbled_verity_read_is_an_error(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        verity_ab.parse_usr_verity(text)


def test_verity_on_the_lab_vm_is_verified_read_only_without_a_slot(base: Profile) -> None:
    """Recorded on the lab's verity VM: a real dm-verity /usr on whole virtio disks."""
    usr = verity_ab.parse_usr_verity((DATA / "verity-vm-usr.txt").read_text())
    assert (usr.device, usr.target, usr.status, usr.read_only) == ("dm-0", "verity", "V", True)
    assert usr.partitions == (("vdc", ""), ("vdd", ""))
    [finding] = verity_ab.check_verity_ab(usr, expecting(base, verity_ab=True))
    assert finding.check == "usr.slot"
    assert "/dev/vdc PARTNAME=(none), /dev/vdd PARTNAME=(none)" in finding.found


def test_verity_read_on_this_machine_has_no_usr_mapping() -> None:
    """No device-mapper here: the read's own script exits 3 (no usr mapping)."""
    if any(Path("/sys/block").glob("dm-*")):
        pytest.skip("this machine has device-mapper devices")
    assert _sh(verity_ab.USR_VERITY.script).returncode == 3


# -- system extensions ---------------------------------------------------------------------


def test_sysexts_merged_and_containerd_from_its_extension(base: Profile) -> None:
    found = sysext.parse_sysext((DATA / "sysext-merged.txt").read_text())
    profile = expecting(base, sysexts=("containerd", "kubernetes"))
    assert found.merged["/usr"] == ("containerd", "kubernetes")
    assert sysext.check_sysexts(found, profile) == []
    assert sysext.check_containerd_origin(found, "containerd", profile) == []


def test_sysext_not_merged_names_what_was_found(base: Profile) -> None:
    found = sysext.parse_sysext((DATA / "sysext-none.txt").read_text())
    [finding] = sysext.check_sysexts(found, expecting(base, sysexts=("containerd",)))
    assert finding.found == "no such image; merged: /opt: none, /usr: none"
    [origin] = sysext.check_containerd_origin(found, "containerd", base)
    assert "does not exist" in origin.found


def test_containerd_from_the_base_usr_and_undecidable() -> None:
    text = (DATA / "sysext-merged.txt").read_text()
    lines = text.splitlines()
    base_dev = next(ln.split()[0] for ln in lines if ln.endswith("/usr/lib/os-release"))
    from_base = "\n".join(
        f"{base_dev} /usr/bin/containerd" if ln.endswith("/usr/bin/containerd") else ln
        for ln in lines)
    found = sysext.parse_sysext(from_base)
    [finding] = sysext.check_containerd_origin(found, "containerd", load_profiles().get("azl-3.0"))
    assert finding.found == "from the base /usr"
    same = "\n".join(f"{base_dev} {ln.split()[1]}" if ln[:1].isdigit() else ln for ln in lines)
    with pytest.raises(ProbeUnavailable, match="cannot tell"):
        sysext.check_containerd_origin(sysext.parse_sysext(same), "containerd",
                                       load_profiles().get("azl-3.0"))


def test_sysext_versioned_names() -> None:
    assert sysext.matches("containerd", "containerd_2.1.4")
    assert sysext.matches("containerd", "containerd-2.1.4")
    assert not sysext.matches("containerd", "containerd-shim")


@pytest.mark.parametrize("mutate, why", [
    (lambda t: t.replace('"extensions":["containerd","kubernetes"]', '"extensions":7'),
     "extensions of /usr"),
    (lambda t: t.split("==> list")[0], "cut short"),
    (lambda t: t.replace("==> status-rc 0", "==> status-rc 1"), "failed"),
    (lambda t: t.replace('[{"hierarchy"', '{{"hierarchy"', 1), "not JSON"),
])
def test_garbled_sysext_read_is_an_error(mutate: object, why: str) -> None:
    text = (DATA / "sysext-merged.txt").read_text()
    with pytest.raises(ValueError, match=why):
        sysext.parse_sysext(mutate(text))  # type: ignore[operator]


def test_sysext_read_on_this_machine() -> None:
    result = _sh(sysext.SYSEXT.script)
    if result.returncode == 3:
        pytest.skip("no systemd-sysext on this machine")
    found = sysext.parse_sysext(result.stdout)
    assert "/usr" in found.merged and "/usr/lib/os-release" in found.devices


# -- SELinux policy, IPE mode --------------------------------------------------------------


def test_selinux_policy_name_from_the_config(base: Profile) -> None:
    profile = expecting(base, selinux_policy="targeted")
    config = "SELINUX=enforcing\nSELINUXTYPE=targeted\n"
    assert check_selinux_policy(selinux_state("1", "Enforcing", config, []), profile) == []
    # this machine's /etc/selinux/config (Debian 12 selinux-basics), SELinux not running
    debian = "SELINUX=permissive\nSELINUXTYPE=default\nSETLOCALDEFS=0\n"
    [off] = check_selinux_policy(selinux_state(None, None, debian, []), profile)
    assert "SELinux disabled" in off.found
    [other] = check_selinux_policy(selinux_state("0", "Permissive", debian, []), profile)
    assert other.found == "default"
    [none] = check_selinux_policy(selinux_state("1", "Enforcing", None, ["enforcing=1"]), profile)
    assert "no SELINUXTYPE" in none.found


@pytest.mark.parametrize("policies, enforce, mode", [
    (None, None, "off"),
    ("", "1", "off"),  # IPE active, no policy
    ("acl_boot_policy 0\n", "1", "off"),
    ("acl_boot_policy 1\n", "0", "audit"),  # ACL with ipe=audit: enforce 0, policy active
    ("acl_boot_policy 1\n", "1", "enforce"),
])
def test_ipe_mode(policies: str | None, enforce: str | None, mode: str, base: Profile) -> None:
    found = ipe_mode(policies, enforce)
    assert found[0] == mode
    profile = expecting(base, ipe_mode="audit")
    assert (check_ipe_mode(found, profile) == []) is (mode == "audit")


def test_ipe_enforce_garbage_is_an_error() -> None:
    with pytest.raises(ValueError, match="not 0 or 1"):
        ipe_mode("acl_boot_policy 1\n", "")


# -- kernel-module blacklist (AgentBaker e2e/validators.go) --------------------------------

# What AgentBaker's cse_main.sh writes (Azure/AgentBaker PR #8437 and #8475:
# /etc/modprobe.d/disable-algif_aead.conf and the modprobe-CIS.conf lines).
BLOCKED = """==> lines
/etc/modprobe.d/CIS.conf:install sctp /bin/true
/etc/modprobe.d/disable-algif_aead.conf:install algif_aead /bin/false
/etc/modprobe.d/disable-algif_aead.conf:blacklist algif_aead
/etc/modprobe.d/CIS.conf:install esp4 /bin/false
/etc/modprobe.d/CIS.conf:blacklist esp4
/etc/modprobe.d/CIS.conf:install esp6 /bin/false
/etc/modprobe.d/CIS.conf:install rxrpc /bin/false
==> grep-rc 0
==> modules
overlay 200704 0 - Live 0x0000000000000000
"""


def test_blacklist_required_and_present(base: Profile) -> None:
    found = module_blacklist.parse_blacklist(BLOCKED)
    assert module_blacklist.check_module_blacklist(
        found, expecting(base, module_blacklist="required")) == []
    forbidden = module_blacklist.check_module_blacklist(
        found, expecting(base, module_blacklist="forbidden"))
    modules = module_blacklist.MODULES
    assert [f.check for f in forbidden] == [f"module_blacklist.{m}" for m in modules]
    assert "disable-algif_aead.conf: blacklist algif_aead" in forbidden[0].found


def test_blacklist_required_but_missing_or_loaded(base: Profile) -> None:
    text = BLOCKED.replace("install rxrpc /bin/false", "# install rxrpc /bin/false") + \
        "esp4 32768 0 - Live 0x0000000000000000\n"
    found = module_blacklist.check_module_blacklist(
        module_blacklist.parse_blacklist(text), expecting(base, module_blacklist="required"))
    assert [(f.check, f.found) for f in found] == [
        ("module_blacklist.esp4", "esp4 is in /proc/modules"),
        ("module_blacklist.rxrpc", "no such line"),
    ]


def test_blacklist_on_the_lab_vm(base: Profile) -> None:
    """Recorded on the lab's verity VM (Debian 12 kernel): no directive, modules loaded."""
    found = module_blacklist.parse_blacklist((DATA / "blacklist-vm.txt").read_text())
    assert found.lines == () and "dm_verity" in found.loaded
    assert module_blacklist.check_module_blacklist(
        found, expecting(base, module_blacklist="forbidden")) == []
    required = module_blacklist.check_module_blacklist(
        found, expecting(base, module_blacklist="required"))
    assert [f.found for f in required] == ["no such line"] * 4


def test_blacklist_read_on_this_machine(base: Profile) -> None:
    result = _sh(module_blacklist.BLACKLIST.script)
    found = module_blacklist.parse_blacklist(result.stdout)
    confs = sorted(Path("/etc/modprobe.d").glob("*.conf"))
    expected = any("algif_aead" in p.read_text(errors="replace") for p in confs)
    assert bool(found.entries("algif_aead")) is expected


@pytest.mark.parametrize("text, why", [
    ("==> lines\n==> grep-rc 2\n==> modules\n", "cannot be read"),
    ("==> lines\n", "cut short"),
    ("==> lines\n==> grep-rc 0\n==> modules\n==> modules-unreadable\n", "/proc/modules"),
    ("==> lines\nrandom text\n==> grep-rc 0\n==> modules\n", "unexpected grep line"),
])
def test_blacklist_read_errors(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        module_blacklist.parse_blacklist(text)


def test_the_dmsetup_read_is_not_in_every_hosts_batch() -> None:
    """dmsetup runs in lvm_t under SELinux, which may not write the batch's temporary files:
    on the lab's SELinux VMs it logged an AVC on every host. It is read only where a profile
    asks for A/B slots."""
    from pytest_azlinux.posture import gather, verity_ab

    assert verity_ab.USR_VERITY not in gather.READS
    assert not any("dmsetup" in r.script for r in gather.READS)
