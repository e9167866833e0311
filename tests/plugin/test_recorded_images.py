"""``kind: recorded``: the shipped image suite run on recorded real node images.

Each test runs a real pytest (pytester, in a subprocess) over ``suites/image`` with a
targets file naming copies of AgentBaker release-notes files (tests/data/agentbaker, sources
in its PROVENANCE.md). Every outcome is one a person can check against the file: what the
file holds is judged (PASS or FAIL), what it does not hold is a SKIP that says so, and
nothing is an ERROR for lack of evidence. Copies the test changes show the verdicts follow
the file's content.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_azlinux.report.junit import read_cases

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "agentbaker"
IMAGE_SUITE = str(REPO / "suites" / "image")
RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
GEN2 = "AKSAzureLinuxV3/gen2/202511.07.0.txt"
FIPS = "AKSAzureLinuxV3/gen2fips/202608.20.0.txt"
OSGUARD = "AKSAzureLinuxV3/osguardgen2fipstl/202608.20.0.txt"


def _copy(pytester: pytest.Pytester, rel: str, edit: tuple[str, str] | None = None) -> str:
    """A copy of a recorded file under the test's directory (same SKU/flavour/name), edited
    if asked; returns its path relative to the targets file."""
    dest = pytester.path / "rec" / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if edit is None:
        shutil.copyfile(DATA / rel, dest)
    else:
        text = (DATA / rel).read_text()
        assert edit[0] in text
        dest.write_text(text.replace(edit[0], edit[1]))
    return str(Path("rec") / rel)


def _targets(pytester: pytest.Pytester, **targets: str) -> None:
    """``name: 'path[ | profile]'`` -> a targets file of recorded targets."""
    lines = ["targets:"]
    for name, value in targets.items():
        path, _, profile = value.partition("|")
        lines += [f"  {name}:", "    kind: recorded", f"    path: {path.strip()}"]
        if profile.strip():
            lines.append(f"    profile: {profile.strip()}")
    pytester.makefile(".yaml", **{"azl-targets": "\n".join(lines) + "\n"})


def _run(pytester: pytest.Pytester, target: str, *args: str) -> tuple[
        pytest.RunResult, dict[str, tuple[str, str]], dict[str, dict[str, str]]]:
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        *RUN, IMAGE_SUITE, f"--azl-target={target}", "-rA", "--azl-junit-dir", str(reports),
        "--azl-targets-file", str(pytester.path / "azl-targets.yaml"), *args)
    outcomes: dict[str, tuple[str, str]] = {}
    props: dict[str, dict[str, str]] = {}
    for path in reports.glob("*.xml"):
        suites, cases = read_cases(path)
        props.update(suites)
        for case in cases:
            outcomes[case.name] = (case.outcome, case.message)
    return result, outcomes, props


def _skipped_saying(outcomes: dict[str, tuple[str, str]], name: str, words: str) -> None:
    outcome, message = outcomes[name]
    assert outcome == "skipped", (name, outcome, message)
    assert words in message, (name, message)


def test_gen2_judges_what_the_file_holds(pytester: pytest.Pytester) -> None:
    _targets(pytester, gen2=_copy(pytester, GEN2))
    result, outcomes, props = _run(pytester, "gen2")
    assert result.ret == 0, result.stdout.str()
    host = "202511.07.0"
    for test in ("test_fips_enabled", "test_os_release_matches_profile",
                 "test_kernel_flavour_and_release", "test_package_versions"):
        assert outcomes[f"{test}[{host}]"][0] == "passed", (test, outcomes[f"{test}[{host}]"])
    file = f"rec/{GEN2}"
    _skipped_saying(outcomes, f"test_sshd_presence[{host}]",
                    f"{file}: the recording does not hold the output of `command -v sshd`")
    _skipped_saying(outcomes, f"test_kernel_cmdline[{host}]",
                    "the recording does not hold the kernel command line")
    _skipped_saying(outcomes, f"test_release_files_agree[{host}]",
                    "the recording does not hold the release files beside os-release")
    _skipped_saying(outcomes, f"test_active_lsms[{host}]",
                    "the recording does not hold the file /sys/kernel/security/lsm")
    assert not [n for n, (o, _) in outcomes.items() if o in ("error", "failed")], outcomes
    image = props["azurelinux-3.0.20251030"]
    assert image["azl.node_image_version"] == "AKSAzureLinux-V3gen2-202511.07.0"
    assert image["azl.kernels"] == "6.6.104.2-4.azl3"


def test_package_check_reads_the_recorded_rpm_list(pytester: pytest.Pytester) -> None:
    """libapparmor taken out of a copy's package list: the profile's package rule fails."""
    path = _copy(pytester, GEN2, ("libapparmor-3.1.7-1.azl3.x86_64\n", ""))
    _targets(pytester, gen2=path)
    result, outcomes, _ = _run(pytester, "gen2")
    outcome, message = outcomes["test_package_versions[202511.07.0]"]
    assert outcome == "failed", (outcome, message)
    assert "libapparmor installed" in message and "not installed (rpm database)" in message
    assert result.ret == 1


def test_expected_version_is_judged_on_the_recorded_os_release(
        pytester: pytest.Pytester) -> None:
    path = _copy(pytester, GEN2)
    pytester.makefile(".yaml", **{"azl-targets": (
        f"targets:\n  gen2:\n    kind: recorded\n    path: {path}\n"
        "    expect:\n      image_version: 3.0.20260101\n")})
    _, outcomes, _ = _run(pytester, "gen2")
    outcome, message = outcomes["test_expected_image_version[202511.07.0]"]
    assert outcome == "failed" and "3.0.20251030" in message, (outcome, message)


def test_fips_flavour_says_fips(pytester: pytest.Pytester) -> None:
    _targets(pytester, fips=_copy(pytester, FIPS))
    result, outcomes, _ = _run(pytester, "fips")
    assert result.ret == 0, result.stdout.str()
    host = "202608.20.0"
    assert outcomes[f"test_fips_enabled[{host}]"][0] == "passed"
    assert "aks-node-3.0-fips" in result.stdout.str()  # the FIPS profile was chosen
    _skipped_saying(outcomes, f"test_openssl_fips_provider[{host}]",
                    "the recording does not hold the output of `command -v openssl`")
    assert not [n for n, (o, _) in outcomes.items() if o in ("error", "failed")], outcomes


def test_fips_image_recorded_with_fips_off_fails(pytester: pytest.Pytester) -> None:
    _targets(pytester, fips=_copy(pytester, FIPS, ("FIPS enabled: True", "FIPS enabled: false")))
    _, outcomes, _ = _run(pytester, "fips")
    outcome, message = outcomes["test_fips_enabled[202608.20.0]"]
    assert outcome == "failed", (outcome, message)


def test_os_guard(pytester: pytest.Pytester) -> None:
    """OS Guard, its profile chosen from the recording: no /proc/version, so the kernel checks
    SKIP; its packages are judged; in support until 2026-12-10 (a warning in the last 30
    days), then a FAIL of one line naming the date and the successor."""
    _targets(pytester, osguard=_copy(pytester, OSGUARD))
    result, outcomes, props = _run(pytester, "osguard", "--azl-today=2026-12-07")
    assert result.ret == 0, result.stdout.str()
    host = "202608.20.0"
    assert "aks-node-osguard" in result.stdout.str()  # chosen from the node image label
    assert outcomes[f"test_package_versions[{host}]"][0] == "passed"
    assert outcomes[f"test_fips_enabled[{host}]"][0] == "passed"
    assert outcomes[f"test_os_release_matches_profile[{host}]"][0] == "passed"
    assert outcomes[f"test_image_supported[{host}]"][0] == "passed"
    result.stdout.fnmatch_lines(["*SupportEndingWarning*2026-12-10*"])
    _skipped_saying(outcomes, f"test_kernel_flavour_and_release[{host}]",
                    "the recording does not hold the running kernel (/proc/version)")
    _skipped_saying(outcomes, f"test_sshd_client_alive_interval[{host}]",
                    "not applicable: profile aks-node-osguard has no sshd")
    assert not [n for n, (o, _) in outcomes.items() if o in ("error", "failed")], outcomes
    image = props["azurelinux-3.0.20260107-osguard"]
    assert image["azl.node_image_version"] == "AKSAzureLinux-OSGuardV3gen2fipsTL-202608.20.0"
    assert image.get("azl.kernels", "") == ""  # not recorded: no kernel is claimed

    result, after, _ = _run(pytester, "osguard", "--azl-today=2026-12-11")
    assert result.ret == 1
    outcome, message = after[f"test_image_supported[{host}]"]
    assert outcome == "failed"
    line = message.removeprefix("Failed: ")
    assert "\n" not in line.strip() and "out of support since 2026-12-10" in line
    assert "aks-node-acl" in line  # what replaces it
    assert [n for n, (o, _) in after.items() if o == "failed"] == [f"test_image_supported[{host}]"]


LIVE_TESTS = """
import pytest

from pytest_azlinux.errors import NotRecorded

@pytest.mark.azl_network
def test_throughput(azl_host):
    azl_host.run("iperf3 -s")

@pytest.mark.azl_storage
def test_snapshot(azl_host):
    azl_host.run("mkfs.btrfs /dev/sdz")

def test_a_command(azl_host):
    azl_host.run("uname -a")

@pytest.fixture
def needs_a_command(azl_host):
    return azl_host.run("cat /etc/hostname")

def test_fixture_reads_unrecorded(needs_a_command):
    pass

def test_facts_after(azl_host):
    assert azl_host.facts.version == "3.0.20251030"
    assert azl_host.facts.missing >= {"cmdline", "release_files"}
"""


def test_commands_and_live_suites_skip_and_the_host_stays_usable(
        pytester: pytest.Pytester) -> None:
    _targets(pytester, gen2=_copy(pytester, GEN2))
    pytester.makepyfile(test_live=LIVE_TESTS)
    result = pytester.runpytest_subprocess(
        *RUN, "test_live.py", "--azl-target=gen2", "-rA", "-p", "no:randomly",
        "--azl-junit-dir", str(pytester.path / "reports"),
        "--azl-targets-file", str(pytester.path / "azl-targets.yaml"))
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines_random([
        f"*rec/{GEN2}: a recorded image; the network suite needs a running host (it "
        "measures throughput between running hosts)",
        "*a recorded image; the storage suite needs a running host*",
        f"*rec/{GEN2}: the recording does not hold the output of `uname -a`",
        "*the recording does not hold the output of `cat /etc/hostname`",
        "PASSED test_live.py::test_facts_after*",
    ])


def test_a_directory_is_one_host_per_file(pytester: pytest.Pytester) -> None:
    _copy(pytester, GEN2)
    _copy(pytester, "AKSAzureLinuxV3/gen2/202511.12.0.txt")
    (pytester.path / "rec/AKSAzureLinuxV3/gen2/202511.12.0-image-list.json").write_text("{}")
    _targets(pytester, gen2="rec/AKSAzureLinuxV3/gen2")
    result = pytester.runpytest_subprocess(
        *RUN, IMAGE_SUITE, "--azl-target=gen2", "--collect-only", "-q",
        "--azl-targets-file", str(pytester.path / "azl-targets.yaml"))
    out = result.stdout.str()
    assert "test_fips_enabled[202511.07.0]" in out and "test_fips_enabled[202511.12.0]" in out
    assert "image-list" not in out


@pytest.mark.parametrize(("content", "fault"), [
    ("=== os-release Begin\nID=azurelinux\n", "'=== os-release Begin' without its End"),
    ("just some text\n", "not an AgentBaker release-notes file"),
])
def test_a_malformed_recording_is_a_usage_error(
        pytester: pytest.Pytester, content: str, fault: str) -> None:
    bad = pytester.path / "rec" / "AKSAzureLinuxV3" / "gen2" / "202511.07.0.txt"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    _targets(pytester, gen2=str(bad.relative_to(pytester.path)))
    result = pytester.runpytest_subprocess(
        *RUN, IMAGE_SUITE, "--azl-target=gen2",
        "--azl-targets-file", str(pytester.path / "azl-targets.yaml"))
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and str(bad) in errors[0] and fault in errors[0], result.stderr.str()
    assert "Traceback" not in result.stderr.str()


ACL_RULES = """\
name: acl-rules
extends: aks-node-acl
expect:
  packages:
    kernel: {min: "6.6", required: true, source: "test rule"}
    containerd2: {required: true, source: "test rule"}
"""


def test_acl_packages_come_from_its_manifest(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """ACL's release notes write a stub where the package list goes: a SKIP saying so. With
    a manifest recorded beside the file, the same check reads its packages from it.

    The manifest is ACL's own generator golden (tests/data/spdx, PROVENANCE.md: from a
    trimmed production image); the ``containerd`` sysext manifest is made by this test from
    it (one package renamed), as no shipped one is public."""
    acl = "AKSAzureContainerLinux/gen2tl/202608.20.0.txt"
    profiles = pytester.mkdir("profiles")
    (profiles / "acl-rules.yaml").write_text(ACL_RULES)
    monkeypatch.setenv("AZL_PROFILES_DIR", str(profiles))
    path = _copy(pytester, acl)
    _targets(pytester, acl=f"{path} | acl-rules")
    _, outcomes, props = _run(pytester, "acl")
    test = "test_package_versions[202608.20.0]"
    _skipped_saying(outcomes, test,
                    f"rec/{acl}: the recording does not hold the installed packages (ACL's "
                    "release notes write a stub there)")
    # what the file does not hold (command line, efivars, /usr, SELinux...) is never a FAIL
    assert not [n for n, (o, _) in outcomes.items() if o in ("error", "failed")], outcomes
    _skipped_saying(outcomes, "test_cmdline_usrhash[202608.20.0]",
                    "the recording does not hold the kernel command line")
    image = props["azurelinux-3.0.20260809-azurecontainerlinux"]
    assert image["azl.node_image_version"] == "AKSAzureLinux-aclgen2TL-202608.20.0"

    manifests = pytester.path / "rec" / acl.replace(".txt", ".os-manifests")
    manifests.mkdir()
    golden = (REPO / "tests" / "data" / "spdx" / "package-manifest.spdx.json").read_text()
    (manifests / "package-manifest.spdx.json").write_text(golden)
    _, outcomes, _ = _run(pytester, "acl")
    outcome, message = outcomes[test]
    assert outcome == "failed", (outcome, message)  # kernel 6.6.145.2 is there; no containerd2
    assert "packages.containerd2" in message and "packages.kernel" not in message
    assert "not installed (SPDX manifests: package-manifest.spdx.json)" in message

    sysext = golden.replace('"name": "sed"', '"name": "containerd2"')
    assert sysext != golden
    (manifests / "package-manifest.containerd.spdx.json").write_text(sysext)
    _, outcomes, _ = _run(pytester, "acl")
    assert outcomes[test][0] == "passed", outcomes[test]
