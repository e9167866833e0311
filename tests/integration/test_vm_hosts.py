"""Lab VM hosts on real qemu VMs: each variant's kernel really runs the LSM / FIPS / verity.

The VMs come from the session fixture ``vm_lab`` (tests/fixtures/vm.py: one lab, one VM per
variant, shared with test_vm_suites.py, stopped and removed at the end of the session). Under
software emulation (no usable KVM here) a VM needs 35-50 s to reach sshd on an idle machine
(up to nine minutes on a busy one; ``vm.boot_timeout`` allows 20) and two boot at a time,
so the first module that asks takes a few minutes more.
Needs root, qemu-system-x86_64, debootstrap (first run: builds the image, ~4 min).
"""

from __future__ import annotations

import subprocess

import pytest

from pytest_azlinux.analyse.avc import parse_records
from pytest_azlinux.host import Host
from pytest_azlinux.lab import vm as vmmod
from pytest_azlinux.lab.vm import load_vms, start_vms
from pytest_azlinux.lab.vm_image import VmError
from pytest_azlinux.posture import boot
from pytest_azlinux.profiles import load_profiles
from tests.fixtures.lab import make_lab, unique_lab_name
from tests.fixtures.vm import VM_VARIANTS, VmLab, denials_since, journal_cursor

VARIANTS = list(VM_VARIANTS)
# The denial workload: run cat as httpd_t (a confined web-server domain) on /etc/shadow.
DENIAL = "runcon -t httpd_t -r system_r -u system_u -- cat /etc/shadow"


@pytest.mark.parametrize("variant", VARIANTS)
def test_vm_carries_the_azure_linux_identity_on_a_debian_kernel(
    vm_hosts: dict[str, Host], vm_lab: VmLab, variant: str
) -> None:
    host = vm_hosts[variant]
    spec = vm_lab.vms[variant].spec
    facts = host.facts
    assert facts.os_id == "azurelinux" and facts.version == "3.0.20251021"
    assert facts.variant_id == spec.variant_id
    assert facts.image_key == f"azurelinux-3.0.20251021-{spec.variant_id}"
    assert facts.kernel.endswith("-amd64"), facts.kernel  # Debian's kernel, said plainly
    for item in spec.cmdline:
        assert item in facts.cmdline
    assert host.run("sudo -n true").rc == 0  # passwordless sudo, as lab hosts


def test_selinux_enforcing_denial_is_real(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["selinux-enforcing"]
    assert host.check_output("getenforce").strip() == "Enforcing"
    res = host.run(DENIAL, sudo=True)
    assert res.rc != 0 and "Permission denied" in res.stderr
    out = host.run("ausearch --input-logs -m AVC -c runcon", sudo=True).stdout
    records = [r for r in parse_records(out) if r.verdict == "denied"]
    assert records, f"no AVC from runcon in ausearch output:\n{out[-2000:]}"
    assert all(r.permissive is False for r in records)
    assert any(r.tcontext and r.tcontext.type == "httpd_t" for r in records)


def test_confined_programs_write_their_output_without_a_denial(vm_hosts: dict[str, Host]) -> None:
    """modprobe runs in kmod_t, auditctl in auditctl_t: on an enforcing host their output
    reaches the caller through the shell's pipes, and the policy has nothing to deny (it did
    deny their use of output files in /tmp or $HOME)."""
    host = vm_hosts["selinux-enforcing"]
    cursor = journal_cursor(host)
    modprobe = host.run("modprobe -n -v squashfs", sudo=True)
    assert modprobe.rc == 0 and "squashfs.ko" in modprobe.stdout, modprobe
    auditctl = host.run("auditctl -s", sudo=True)
    assert auditctl.rc == 0 and "enabled" in auditctl.stdout, auditctl
    assert host.run("modprobe -n -v no-such-module-azl", sudo=True).rc != 0
    denials = denials_since(host, cursor)
    assert "kmod_t" not in denials and "auditctl_t" not in denials, denials


def test_selinux_permissive_logs_with_permissive_1(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["selinux-permissive"]
    assert host.check_output("getenforce").strip() == "Permissive"
    res = host.run(DENIAL, sudo=True)
    assert res.rc == 0 and "root:" in res.stdout  # permissive: the read goes through
    out = host.run("ausearch --input-logs -m AVC", sudo=True).stdout
    records = [
        r for r in parse_records(out) if r.verdict == "denied" and r.comm in ("runcon", "cat")
    ]
    assert records, f"no AVC for the workload:\n{out[-2000:]}"
    assert all(r.permissive is True for r in records)
    assert any(r.tcontext and r.tcontext.type == "shadow_t" for r in records)


def test_apparmor_is_the_active_lsm(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["apparmor"]
    assert host.read_text("/sys/module/apparmor/parameters/enabled").strip() == "Y"
    lsm = host.read_text("/sys/kernel/security/lsm").split(",")
    assert "apparmor" in lsm and "selinux" not in lsm
    assert host.run("systemctl is-active apparmor.service").stdout.strip() == "active"
    assert host.run("cat /proc/self/attr/apparmor/current").stdout.strip() == "unconfined"


def test_fips_kernel_reports_fips_enabled(vm_hosts: dict[str, Host]) -> None:
    assert vm_hosts["fips"].read_text("/proc/sys/crypto/fips_enabled").strip() == "1"
    assert vm_hosts["selinux-enforcing"].read_text("/proc/sys/crypto/fips_enabled").strip() == "0"


def test_verity_usr_is_verified_and_read_only(vm_hosts: dict[str, Host]) -> None:
    host = vm_hosts["verity"]
    status = host.check_output("veritysetup status usr", sudo=True)
    assert "is active and is in use" in status
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in status.splitlines())
    )
    assert (fields.get("type"), fields.get("status")) == ("VERITY", "verified"), status
    assert "readonly" in fields.get("mode", ""), status
    assert host.check_output("findmnt -no SOURCE,OPTIONS /usr").startswith("/dev/mapper/usr ro")
    res = host.run("touch /usr/azl-write-test", sudo=True)
    assert res.rc != 0 and "Read-only file system" in res.stderr


def test_boot_chain_reads_on_the_verity_vm(vm_hosts: dict[str, Host]) -> None:
    """The image suite's own reads on a real dm-verity VM: no EFI (qemu boots the kernel
    directly) and no usrhash= (the lab names it azl.usrhash=), each a finding, not an error.

    The A/B slot read is not run here: it runs dmsetup, which SELinux confines to lvm_t, and
    on this SELinux VM that logs an AVC (lvm_t -> user_tmp_t:file getattr on the batch's
    output file) that the boot-window denial test then finds. The read needs another way to
    the kernel's verity status before it runs on SELinux hosts."""
    host = vm_hosts["verity"]
    profile = load_profiles().get("azl-3.0-osguard")
    profile = profile.model_copy(update={"usrhash": True, "verity_ab": True, "secure_boot": True})
    [hash_finding] = boot.check_usrhash(host.facts.cmdline, profile)
    assert "no usrhash=" in hash_finding.found
    efi = boot.efi_state(host)
    assert not efi.booted_efi
    assert "BIOS" in boot.check_secure_boot(efi, profile)[0].found


def test_boot_timeout_is_an_error_with_console_tail_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A VM that does not reach sshd in time: VmError with the console, nothing left over.

    In a throwaway lab of its own, so the shared VMs keep running for the other tests. The
    forced 3 s bound says nothing about how far the VM got: on a busy machine qemu may not
    have printed anything yet, and the message then says so instead of an empty tail.
    """
    variant = "selinux-permissive"
    monkeypatch.setattr(vmmod, "boot_timeout", lambda accel: 3.0)  # a bound no VM can meet
    with make_lab(unique_lab_name("vt"), hosts=1, variants=["azl3"]) as lab:
        net = vmmod.VmNet.from_lab(lab)
        with pytest.raises(VmError) as info:
            start_vms(lab, [variant])
        msg = str(info.value)
        assert "sshd did not answer within 3 s" in msg and "console tail:" in msg
        assert msg.split("console tail:", 1)[1].strip(), "no console tail and no note"
        assert variant not in {v.variant for v in load_vms(net)}
        assert not (net.state_dir / "vm" / vmmod.vm_name(net, variant)).exists()
        tap = vmmod._tap(net, variant)
        assert subprocess.run(["ip", "link", "show", tap], capture_output=True).returncode != 0
        assert vmmod.vm_address(net, variant) not in lab.known_hosts.read_text()
