"""Escape analysis on probe output recorded in real runc containers (tests/data/escape).

The recordings come from ``RuncProbe.run`` on a Debian 12 host (kernel 6.18, runc 1.1.5,
cgroup v1 hierarchies; tests/data/escape/record.py re-records them): the three profiles, and
the restricted profile with one weakness added at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_azlinux.analyse.escape import (
    RULES,
    RUNTIME_DEFAULT_CAPS,
    ProbeOutputError,
    Severity,
    capability_findings,
    decode_caps,
    full_cap_mask,
    kernel_cves,
    parse_probe_output,
    probe_script,
    runtime_cves,
    verdict_for,
)
from pytest_azlinux.builtin import SUITES
from pytest_azlinux.containers.oci import HostLayout, Variation, all_caps, build_config
from pytest_azlinux.containers.runtime import parse_detection, skip_reason, usable_runc
from pytest_azlinux.containers.settings import EscapeSettings
from pytest_azlinux.errors import InfraError, SettingsError
from pytest_azlinux.settings import parse
from pytest_azlinux.suite_table import load_suites

DATA = Path(__file__).resolve().parents[1] / "data" / "escape"


def recorded(name: str) -> str:
    return (DATA / f"{name}.jsonl").read_text()


def test_probe_has_at_least_20_catalog_checks() -> None:
    checks = {o.check for o in parse_probe_output(recorded("restricted"))}
    assert len(checks & set(RULES)) >= 20
    assert set(RULES) <= checks


def test_restricted_container_has_no_fail() -> None:
    verdict = verdict_for(recorded("restricted"), "restricted")
    assert verdict.failures == []
    assert verdict.outcome == "warn"  # no LSM on the recording host
    assert [f.check for f in verdict.with_severity(Severity.WARN)] == ["lsm.label"]
    assert verdict.elapsed_ms is not None and verdict.elapsed_ms < 2000


@pytest.mark.parametrize(("recording", "check"), [
    ("restricted-cap-sys-admin", "caps.dangerous"),
    ("restricted-host-pid", "ns.host_pid"),
    ("restricted-runtime-socket", "sock.runtime"),
    ("restricted-writable-proc-sys", "procfs.writable"),
    ("restricted-no-seccomp", "seccomp"),
])
def test_each_dangerous_setting_fails_its_check(recording: str, check: str) -> None:
    verdict = verdict_for(recorded(recording), "restricted")
    assert verdict.outcome == "fail"
    finding = verdict.finding(check)
    assert finding.severity is Severity.FAIL and finding.found is True
    assert check in verdict.summary()  # the failure message lists the finding


def test_details_of_dangerous_settings() -> None:
    caps = verdict_for(recorded("restricted-cap-sys-admin"), "restricted").finding("caps.dangerous")
    assert "sys_admin" in caps.detail
    sock = verdict_for(recorded("restricted-runtime-socket"), "restricted")
    assert "/run/containerd/containerd.sock" in sock.finding("sock.runtime").detail
    assert sock.finding("mount.hostpath").severity is Severity.FAIL  # a .sock is sensitive
    no_seccomp = verdict_for(recorded("restricted-no-seccomp"), "restricted")
    # without seccomp an unprivileged process reaches the keyrings, bpf, perf and userns
    assert {f.check for f in no_seccomp.failures} == {
        "seccomp", "userns.create", "keyring.host", "syscalls.sensitive"}
    assert "keyctl=reached" in no_seccomp.finding("keyring.host").detail


def test_privileged_findings_are_expected_not_failures() -> None:
    verdict = verdict_for(recorded("privileged"), "privileged")
    assert verdict.outcome == "pass"
    expected = {f.check for f in verdict.with_severity(Severity.EXPECTED)}
    assert {"caps.dangerous", "seccomp", "ns.host_pid", "mount.hostpath", "procfs.writable",
            "cgroup.escape", "dev.block", "syscalls.sensitive"} <= expected
    assert "EXPECTED" in verdict.summary()
    # the same container judged as restricted is a failure listing what it found
    as_restricted = verdict_for(recorded("privileged"), "restricted")
    assert as_restricted.outcome == "fail"
    assert {f.check for f in as_restricted.failures} >= expected - {"lsm.label", "userns.host"}


def test_baseline_allows_default_caps_and_root() -> None:
    verdict = verdict_for(recorded("baseline"), "baseline")
    assert verdict.failures == []
    caps = verdict.finding("caps.dangerous")
    assert caps.severity is Severity.INFO and caps.found
    assert verdict.finding("uid.root").severity is Severity.INFO
    strict = verdict_for(recorded("baseline"), "restricted")
    assert {"uid.root", "caps.dangerous", "nnp"} <= {f.check for f in strict.failures}


def test_baseline_fails_beyond_default_caps() -> None:
    lines = recorded("restricted-cap-sys-admin").replace(
        '"dangerous":"sys_admin"', '"dangerous":"sys_admin mknod"')
    assert verdict_for(lines, "baseline").finding("caps.dangerous").severity is Severity.FAIL


def test_full_capability_set_uses_cap_last_cap() -> None:
    assert full_cap_mask(40) == 0x000001FFFFFFFFFF != 0x3FFFFFFFFF
    assert full_cap_mask(37) == 0x3FFFFFFFFF
    caps = {o.check: o for o in parse_probe_output(recorded("privileged"))}["caps.full"]
    # this host's root lacks CAP_SYS_RESOURCE: 1fffeffffff is not the full set of 41
    assert caps.data["capeff"] == "000001fffeffffff" and caps.found is False
    assert "sys_resource" not in decode_caps(caps.data["capeff"])
    assert decode_caps("0000000000200000") == ["sys_admin"]


def test_network_checks_skip_without_configured_addresses() -> None:
    verdict = verdict_for(recorded("restricted"), "restricted")
    for check in ("imds", "wireserver", "kubelet.api"):
        finding = verdict.finding(check)
        assert finding.severity is Severity.SKIPPED
        assert "no" in finding.detail and "address configured" in finding.detail


def test_truncated_or_garbled_output_is_an_infra_error() -> None:
    lines = recorded("restricted").splitlines()
    with pytest.raises(ProbeOutputError, match="incomplete"):
        verdict_for(lines[:-1], "restricted")
    with pytest.raises(ProbeOutputError, match="line 3 is not JSON"):
        verdict_for([*lines[:2], "sh: syntax error", *lines[2:]], "restricted")
    without_seccomp = [line for line in lines if json.loads(line)["check"] != "seccomp"]
    with pytest.raises(ProbeOutputError, match=r"lacks check.*seccomp"):
        verdict_for(without_seccomp, "restricted")
    assert issubclass(ProbeOutputError, InfraError)
    with pytest.raises(ValueError, match="unknown container profile 'debug'"):
        verdict_for(lines, "debug")


def test_kernel_and_runtime_cve_table() -> None:
    assert any("CVE-2022-0847" in c for c in kernel_cves("5.15.20-1"))
    assert not any("CVE-2022-0185" in c for c in kernel_cves("5.15.20-1"))  # fixed in 5.15.16
    assert kernel_cves("6.6.57.1-2.azl3") == []
    assert kernel_cves("6.18.44-fc-v657") == []
    assert runtime_cves("1.1.5+ds1") and runtime_cves("1.1.12") == []
    finding = verdict_for(recorded("restricted"), "restricted", runtime_version="1.1.5+ds1")
    cves = finding.finding("kernel.cves")
    assert cves.severity is Severity.INFO and "CVE-2024-21626" in cves.detail


def test_probe_script_is_a_package_resource() -> None:
    script = probe_script()
    assert script.startswith("#!/bin/sh") and "probe.done" in script
    assert "169.254.169.254" not in script and "168.63.129.16" not in script


def test_settings_validation_and_probe_args() -> None:
    assert parse(EscapeSettings, None, "t").probe_arguments() == {
        "wireserver_ports": "80 32526", "kubelet_ports": "10250 10255", "net_timeout": "1"}
    args = parse(EscapeSettings, {"imds_address": "127.0.0.1:8080",
                                  "kubelet_address": "198.18.0.2"}, "t").probe_arguments()
    assert args["imds"] == "127.0.0.1:8080" and args["kubelet"] == "198.18.0.2"
    assert "wireserver" not in args
    with pytest.raises(SettingsError) as exc:
        parse(EscapeSettings, {"imds_address": "x; rm -rf /"}, "lab")
    assert str(exc.value).startswith("target 'lab': field 'suites.escape.imds_address': ")
    assert "\n" not in str(exc.value)
    with pytest.raises(SettingsError, match=r"suites\.escape\.profiles\[0\]"):
        parse(EscapeSettings, {"profiles": ["debug"]}, "lab")


def test_one_settings_model_for_the_host_and_pod_variants() -> None:
    """The pod variant's ``probe_args`` is part of the one model both variants read."""
    settings = parse(EscapeSettings, {"node_ip": "10.224.0.4", "profiles": ["restricted"],
                                      "probe_args": {"host_ns": "net:[4026531840]"}}, "pool")
    assert settings.probe_arguments()["host_ns"] == "net:[4026531840]"
    assert settings.probe_arguments()["node_ip"] == "10.224.0.4"
    with pytest.raises(SettingsError, match=r"'suites.escape.probe_args': unknown probe "
                       r"argument\(s\) rm \(escape.sh takes imds, "):
        parse(EscapeSettings, {"probe_args": {"rm": "-rf"}}, "pool")
    assert load_suites(SUITES)["escape"].model is EscapeSettings


LAYOUT = HostLayout("x86_64", 40, ("/usr",), {"/bin": "usr/bin"}, 0x1FFFEFFFFFF)


def _config(profile: str, variation: Variation | None = None) -> dict:  # type: ignore[type-arg]
    return build_config(profile, LAYOUT, ["sh"], probe_dir="/b/azl", scratch_dir="/b/tmp",  # type: ignore[arg-type]
                        variation=variation)


def test_restricted_config_applies_real_settings() -> None:
    cfg = _config("restricted")
    proc = cfg["process"]
    assert proc["user"] == {"uid": 65534, "gid": 65534} and proc["noNewPrivileges"] is True
    assert all(v == [] for v in proc["capabilities"].values())
    assert cfg["root"]["readonly"] is True
    linux = cfg["linux"]
    assert {n["type"] for n in linux["namespaces"]} == {
        "mount", "pid", "ipc", "uts", "network", "cgroup"}
    assert "/proc/sys" in linux["readonlyPaths"] and "/proc/kcore" in linux["maskedPaths"]
    denied = linux["seccomp"]["syscalls"][0]["names"]
    assert {"unshare", "mount", "keyctl", "bpf", "perf_event_open", "init_module"} <= set(denied)
    sys_mount = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]


def test_variations_change_one_setting_each() -> None:
    base = _config("restricted")
    admin = _config("restricted", Variation(add_caps=("sys_admin",)))
    assert admin["process"]["capabilities"]["ambient"] == ["CAP_SYS_ADMIN"]
    host_pid = _config("restricted", Variation(host_pid=True))
    assert "pid" not in {n["type"] for n in host_pid["linux"]["namespaces"]}
    proc_sys = _config("restricted", Variation(writable_proc_sys=True))
    assert "/proc/sys" not in proc_sys["linux"]["readonlyPaths"]
    assert "seccomp" not in _config("restricted", Variation(no_seccomp=True))["linux"]
    sock = _config("restricted", Variation(socket=("/h/s.sock", "/run/containerd/containerd.sock")))
    assert len(sock["mounts"]) == len(base["mounts"]) + 1


def test_privileged_config_grants_what_the_host_can() -> None:
    cfg = _config("privileged")
    caps = cfg["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_SYS_RESOURCE" not in caps  # host bounding set
    assert len(all_caps(40)) == 41
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"mount"}
    assert "seccomp" not in cfg["linux"] and "hostname" not in cfg
    assert any(m["destination"] == "/host" and m["source"] == "/" for m in cfg["mounts"])


def test_runtime_detection_parsing() -> None:
    found = parse_detection(
        "runc|/usr/sbin/runc|0|runc version 1.1.5+ds1\n"
        "docker|/usr/local/bin/docker|0|\n"
        "crun|/usr/bin/crun|0|crun version 1.8\n"
        "ctr|/usr/bin/ctr|0|1.7.2\n"
    )
    runc = usable_runc(found)
    assert runc is not None and runc.version == "1.1.5+ds1"
    by_name = {r.name: r for r in found}
    assert "daemon does not answer" in by_name["docker"].reason
    assert "hybrid cgroup" in by_name["crun"].reason
    assert "needs an image" in by_name["ctr"].reason
    assert usable_runc(found[1:]) is None
    assert "no usable runc; found docker" in skip_reason("h1", found[1:])
    assert "no container runtime found" in skip_reason("h1", [])


# --- what the probe used to miss (issue 22), on recordings of exactly that weakness --------


def test_setuid_and_setgid_in_restricted_give_root() -> None:
    verdict = verdict_for(recorded("restricted-cap-setuid-setgid"), "restricted")
    caps = verdict.finding("caps.dangerous")
    assert caps.severity is Severity.FAIL and verdict.outcome == "fail"
    assert "beyond what restricted allows (none): setgid setuid" in caps.why
    assert "gives root: CAP_SETUID lets uid 65534 call setresuid(0)" in caps.why


@pytest.mark.parametrize(("extra", "uid", "nnp", "files", "severity", "says"), [
    (["setuid"], "65534", "1", [], Severity.FAIL, "CAP_SETUID lets uid 65534"),
    (["setgid"], "65534", "1", [], Severity.WARN, None),
    (["setgid"], "65534", "0", [], Severity.FAIL, "CAP_SETGID with no_new_privs off"),
    (["setfcap"], "65534", "1", ["/usr/bin/su"], Severity.FAIL,
     "CAP_SETFCAP with setuid/setgid-root files honoured (/usr/bin/su)"),
    (["chown"], "65534", "1", [], Severity.WARN, None),
    (["sys_admin"], "65534", "1", [], Severity.FAIL, "dangerous: sys_admin"),
])
def test_capability_rules_for_restricted(
    extra: list[str], uid: str, nnp: str, files: list[str], severity: Severity, says: str | None
) -> None:
    got, flagged, reasons = capability_findings(extra, "restricted", uid=uid, no_new_privs=nnp,
                                                setuid_files=files)
    assert (got, flagged) == (severity, extra)
    if says is None:
        assert not any("gives root" in r for r in reasons), reasons
    else:
        assert any(says in r for r in reasons), reasons


def test_baseline_is_judged_against_the_runtime_default_set() -> None:
    assert capability_findings(RUNTIME_DEFAULT_CAPS, "baseline", uid="0", no_new_privs="0",
                               setuid_files=[])[0] is Severity.OK
    severity, extra, _ = capability_findings([*RUNTIME_DEFAULT_CAPS, "sys_nice", "bpf"],
                                             "baseline", uid="0", no_new_privs="0",
                                             setuid_files=[])
    assert (severity, extra) == (Severity.FAIL, ["sys_nice", "bpf"])


def test_ptrace_host_counts_every_reachable_host_process() -> None:
    finding = verdict_for(recorded("restricted-host-pid-nobody-process"), "restricted").finding(
        "ptrace.host")
    assert finding.severity is Severity.FAIL
    assert "/proc/1/root: unreadable" in finding.detail  # PID 1 alone said nothing was open
    assert "whose /proc/PID/root is reachable: 1 of" in finding.detail
    assert ":sleep" in finding.detail and "their files listable: yes" in finding.detail
    assert verdict_for(recorded("restricted-host-pid"), "restricted").finding(
        "ptrace.host").severity is Severity.OK  # no host process of uid 65534 then


def test_combinations_are_named() -> None:
    ptrace = verdict_for(recorded("restricted-host-pid-sys-ptrace"), "restricted")
    note = "combination: CAP_SYS_PTRACE with the host PID namespace"
    assert all(note in ptrace.finding(c).detail
               for c in ("ptrace.host", "ns.host_pid", "caps.dangerous"))
    net = verdict_for(recorded("restricted-host-net-net-admin"), "restricted")
    note = "combination: CAP_NET_ADMIN with the host network namespace"
    assert all(note in net.finding(c).detail for c in ("ns.host_net", "caps.dangerous"))
    assert "combination" not in verdict_for(recorded("restricted-cap-sys-admin"),
                                            "restricted").finding("caps.dangerous").detail


def test_block_device_reported_by_what_the_device_cgroup_allows() -> None:
    finding = verdict_for(recorded("restricted-block-device"), "restricted").finding("dev.block")
    assert finding.severity is Severity.FAIL
    assert "openable read-only by uid 65534: none" in finding.detail
    assert "device cgroup allows: /dev/azl-disk(7:0)=rwm" in finding.detail
    clean = verdict_for(recorded("restricted"), "restricted").finding("dev.block")
    assert clean.severity is Severity.OK and "(every block device: m)" in clean.detail


def test_node_ip_near_the_container_address_is_not_the_host_network() -> None:
    verdict = verdict_for(recorded("restricted-own-netns-node-ip-near"), "restricted")
    assert verdict.finding("ns.host_net").severity is Severity.OK
    assert verdict.failures == []


# --- checks that try the operation they report on (issue 28), on recordings of containers
# with exactly one weakness each (tests/data/escape/record.py: WEAKNESSES) ---------------------


def test_userns_create_tries_clone_when_unshare_is_filtered() -> None:
    verdict = verdict_for(recorded("restricted-seccomp-clone-newuser"), "restricted")
    finding = verdict.finding("userns.create")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert "unshare(CLONE_NEWUSER)=blocked:EPERM" in finding.detail
    assert "clone(CLONE_NEWUSER)=reached:ok" in finding.detail
    assert [f.check for f in verdict.failures] == ["userns.create"]


@pytest.mark.parametrize(("recording", "syscall", "errno"), [
    ("restricted-seccomp-add-key", "add_key", "EINVAL"),
    ("restricted-seccomp-request-key", "request_key", "ENOKEY"),
])
def test_each_keyring_syscall_is_tried_on_its_own(recording: str, syscall: str, errno: str) -> None:
    verdict = verdict_for(recorded(recording), "restricted")
    finding = verdict.finding("keyring.host")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert f"{syscall}=reached:{errno}" in finding.detail
    assert "keyctl=blocked:EPERM" in finding.detail  # the one the old check tried
    assert [f.check for f in verdict.failures] == ["keyring.host"]


def test_reachable_keyring_fails_at_baseline() -> None:
    lines = recorded("baseline-seccomp-keyctl")
    verdict = verdict_for(lines, "baseline")
    finding = verdict.finding("keyring.host")
    assert finding.severity is Severity.FAIL and verdict.outcome == "fail", verdict.summary()
    assert "keyctl=reached:ENOTSUP" in finding.detail
    assert verdict_for(lines, "privileged").finding("keyring.host").severity is Severity.EXPECTED
    # the runtime's default profile: no keyring syscall reaches the kernel
    clean = verdict_for(recorded("baseline"), "baseline").finding("keyring.host")
    assert clean.severity is Severity.OK and "reachable: none" in clean.detail


def test_cgroup_mount_is_tried_itself_not_inferred_from_umount2() -> None:
    verdict = verdict_for(recorded("baseline-sys-admin-seccomp-mount"), "baseline")
    finding = verdict.finding("cgroup.escape")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert ("can mount a v1 hierarchy: yes (mount(2) of the cgroup v1 filesystem: "
            "reached:EINVAL)") in finding.detail
    assert "umount2(non-mountpoint)=blocked:EPERM" in verdict.finding("syscalls.sensitive").detail
    # CAP_SYS_ADMIN alone, mount(2) filtered: the mount is tried and refused
    admin = verdict_for(recorded("restricted-cap-sys-admin"), "restricted").finding("cgroup.escape")
    assert admin.severity is Severity.OK and "blocked:EPERM" in admin.detail


def test_kernel_memory_devices_allowed_by_the_device_cgroup() -> None:
    verdict = verdict_for(recorded("restricted-device-allow-mem"), "restricted")
    finding = verdict.finding("dev.mem")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert ("device cgroup allows: /dev/mem(1:1)=rwm /dev/kmem(1:2)=rwm /dev/port(1:4)=rwm"
            in finding.detail)
    assert verdict.finding("dev.block").severity is Severity.OK  # what the old check saw
    clean = verdict_for(recorded("restricted"), "restricted").finding("dev.mem")
    assert clean.severity is Severity.OK and "device cgroup allows: none" in clean.detail
    privileged = verdict_for(recorded("privileged"), "privileged").finding("dev.mem")
    assert privileged.severity is Severity.EXPECTED


def test_without_python3_the_x86_64_helper_makes_the_call() -> None:
    verdict = verdict_for(recorded("restricted-no-python3-clone-newuser"), "restricted")
    finding = verdict.finding("userns.create")
    assert finding.severity is Severity.FAIL, verdict.summary()
    assert "clone(CLONE_NEWUSER)=reached:ok" in finding.detail
    done = parse_probe_output(recorded("restricted-no-python3-clone-newuser"))[-1]
    assert done.data["raw_syscalls"] == "elf-x86_64"


def test_an_operation_not_tried_is_skipped_never_ok() -> None:
    """Neither python3 nor an executable temp dir: the raw syscalls are not tried, and the
    checks that need them say so."""
    verdict = verdict_for(recorded("restricted-no-python3-noexec-clone-newuser"), "restricted")
    userns = verdict.finding("userns.create")
    assert userns.severity is Severity.SKIPPED and userns.found is None, userns
    why = "not-tried:no-python3,noexec-tmpdir"
    assert f"clone(CLONE_NEWUSER)={why}" in userns.detail
    for check in ("keyring.host", "cgroup.escape", "kmod", "syscalls.sensitive"):
        finding = verdict.finding(check)
        assert finding.severity is Severity.SKIPPED and why in finding.detail, finding
    # what busybox can make is still made
    assert "unshare(CLONE_NEWUSER)=blocked:EPERM" in userns.detail
    assert "insmod(finit_module,init_module)=blocked:EPERM" in verdict.finding("kmod").detail


def test_output_without_the_new_checks_is_incomplete() -> None:
    lines = [line for line in recorded("restricted").splitlines()
             if '"check":"keyring.host"' not in line and '"check":"dev.mem"' not in line]
    with pytest.raises(ProbeOutputError, match=r"lacks check\(s\): dev.mem, keyring.host"):
        parse_probe_output(lines)


def test_seccomp_variation_leaves_out_exactly_what_it_names() -> None:
    base = _config("restricted")["linux"]["seccomp"]["syscalls"]
    weak = _config("restricted", Variation(seccomp_allow=("add_key", "clone:CLONE_NEWUSER")))
    rules = weak["linux"]["seccomp"]["syscalls"]
    assert set(base[0]["names"]) - set(rules[0]["names"]) == {"add_key"}
    assert len(base) - len(rules) == 1  # the clone rule for CLONE_NEWUSER (0x10000000) only
    assert all(r["args"][0]["value"] != 0x10000000 for r in rules if r.get("args"))
    fatal = _config("restricted", Variation(seccomp_kill=("bpf",)))["linux"]["seccomp"]
    assert "bpf" not in fatal["syscalls"][0]["names"]
    assert {"names": ["bpf"], "action": "SCMP_ACT_KILL_PROCESS"} in fatal["syscalls"]
    with pytest.raises(ValueError, match="not in the default seccomp profile: madeup"):
        _config("restricted", Variation(seccomp_allow=("madeup",)))
    devices = _config("restricted", Variation(device_allow=("c 1:1 rwm", "c 1:* r")))
    assert devices["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "access": "rwm", "major": 1, "minor": 1},
        {"allow": True, "type": "c", "access": "r", "major": 1}]
    node = _config("restricted", Variation(char_device=("/dev/azl-port", 1, 4)))["linux"]
    assert node["devices"] == [{"path": "/dev/azl-port", "type": "c", "major": 1, "minor": 4,
                                "fileMode": 0o600, "uid": 0, "gid": 0}]
    assert node["resources"]["devices"][-1] == {
        "allow": True, "type": "c", "major": 1, "minor": 4, "access": "rwm"}
