"""Image files as targets, end to end: real qcow2 and VHD files booted under qemu with a
cloud-init seed, the image suite run against them through ``--azl-image`` (and exactly as
azldev invokes it), and files that cannot work: corrupt, never booting, missing.

Each run is a real pytest in a subprocess; its run name follows from its pid, so the test
checks that nothing of it is left (qemu, taps, bridge, run directory, FUSE exports). The two
full runs (qcow2 through azldev's invocation, VHD) start together: each boots one VM, which
under TCG keeps one core busy.
The test images (tests/fixtures/image.py) are built once and cached; a cold build takes
minutes. Boots run under TCG where KVM does not work: minutes each on a loaded machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_azlinux.image.claims import read_claims
from pytest_azlinux.image.run import bridge_name, run_dir, run_name
from tests.fixtures.child import default_sigint
from tests.fixtures.image import BuiltImages, ensure_test_images
from tests.fixtures.junit import junit_outcomes

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_SECONDS = 3600  # only against a hung run; nothing here depends on speed
CAPABILITIES = "machine-bootable,systemd,runtime-package-management"


@pytest.fixture(scope="module")
def images() -> BuiltImages:
    return ensure_test_images()


@dataclass
class Run:
    rc: int
    output: str
    name: str  # the run name of the run's image target


class StartedRun:
    """A pytest started in a subprocess; ``result()`` waits for it."""

    def __init__(self, args: Sequence[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._run: Run | None = None

    def result(self) -> Run:
        if self._run is None:
            proc = self._proc
            try:
                out, _ = proc.communicate(timeout=HANG_GUARD_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            self._run = Run(proc.returncode, out, run_name("image", proc.pid))
        return self._run


def _pytest(args: Sequence[str], cwd: Path) -> Run:
    return StartedRun(args, cwd).result()


@dataclass
class FullRun:
    started: StartedRun
    junit: Path
    reports: Path


@pytest.fixture(scope="module")
def full_runs(
    request: pytest.FixtureRequest, images: BuiltImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FullRun]]:
    """The full image runs of the selected tests below, all started at once."""
    selected = {item.name for item in request.session.items
                if item.module is request.module}  # type: ignore[attr-defined]
    runs: dict[str, FullRun] = {}
    if "test_azldev_invocation_on_the_qcow2" in selected:
        runs["qcow2"] = _start_azldev_run(images, tmp_path_factory.mktemp("qcow2"))
    if "test_image_suite_on_the_vhd" in selected:
        tmp = tmp_path_factory.mktemp("vhd")
        junit = tmp / "junit.xml"
        started = StartedRun(
            ["suites/image", "--azl-image", str(images.vhd), "-p", "no:cacheprovider",
             "--azl-junit-dir", str(tmp / "reports"), "--junit-xml", str(junit),
             "--azl-command-timeout", "300"],
            ROOT,
        )  # fmt: skip
        runs["vhd"] = FullRun(started, junit, tmp / "reports")
    yield runs
    for run in runs.values():
        run.started.result()  # a test that failed early must not leave its run behind


def _assert_nothing_left(name: str) -> None:
    bridge = bridge_name(name)  # the taps are <bridge>-<index>
    qemus = _qemu_of(name)
    links = [
        line.split(":")[1].strip().split("@")[0]
        for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                                   check=True).stdout.splitlines()
    ]  # fmt: skip
    assert not qemus, f"qemu of run {name} still running: pids {qemus}"
    assert not [n for n in links if n == bridge or n.startswith(f"{bridge}-")]
    assert not run_dir(name).exists(), f"{run_dir(name)} left behind"
    assert "azl-claims-" not in Path("/proc/self/mounts").read_text()


def _props(report_dir: Path) -> dict[str, dict[str, str]]:
    """``{test name: {property: value}}`` of the per-image reports in ``report_dir``."""
    out: dict[str, dict[str, str]] = {}
    for path in report_dir.glob("*.xml"):
        for case in ET.parse(path).getroot().iter("testcase"):
            props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
            out[case.get("name", "")] = props
    return out


def _check_image_run(run: Run, junit: Path, reports: Path) -> None:
    """What every good image run shows: no ERROR, the file's claims agree with the booted
    system, cloud-init is done, boot metrics recorded lower-is-better; nothing left."""
    _assert_nothing_left(run.name)
    assert run.rc in (0, 1), run.output
    outcomes = junit_outcomes(junit)
    errors = {k: v for k, v in outcomes.items() if v[0] == "error"}
    assert not errors, errors
    for name in ("test_os_release_matches_profile[image]", "test_release_files_agree[image]",
                 "test_file_claims_match_booted_system[image]", "test_cloud_init_done[image]",
                 "test_boot_time[image]"):  # fmt: skip
        assert outcomes[name][0] == "passed", (name, outcomes[name])
    props = _props(reports)
    claims = props["test_file_claims_match_booted_system[image]"]
    assert claims["azl.image_file.claimed_id"] == "azurelinux"
    assert claims["azl.image_file.booted_id"] == "azurelinux"
    assert claims["azl.image_file.claimed_version"] == claims["azl.image_file.booted_version"]
    boot = props["test_boot_time[image]"]
    sshd = float(boot["metric.boot_sshd_seconds"])
    done = float(boot["metric.boot_cloud_init_seconds"])
    assert 0 < sshd <= done
    assert boot["metric.boot_sshd_seconds.better"] == "lower"
    # the per-image reports hold every test azldev's --junit-xml holds
    assert set(outcomes) == set(props)


def _azldev_suite() -> dict[str, object]:
    """The pytest suite of the azldev.toml snippet in docs/image-files.md."""
    text = (ROOT / "docs" / "image-files.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block, "docs/image-files.md has no azldev.toml snippet"
    suite: dict[str, object] = tomllib.loads(block.group(1))["test-suites"]["azl-image"]["pytest"]
    return suite


def _start_azldev_run(images: BuiltImages, tmp_path: Path) -> FullRun:
    suite = _azldev_suite()
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "suites", work / "suites")
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    cwd = work / str(suite["working-dir"])
    values = {"{image-path}": str(images.qcow2), "{image-name}": "vm-base",
              "{capabilities}": CAPABILITIES}  # fmt: skip
    args = []
    for arg in suite["extra-args"]:  # type: ignore[attr-defined]
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        args.append(arg)
    junit = tmp_path / "azldev-results.xml"
    started = StartedRun([*suite["test-paths"], *args, "--junit-xml", str(junit)], cwd)  # type: ignore[misc]
    return FullRun(started, junit, cwd / "reports" / "vm-base")


def test_azldev_invocation_on_the_qcow2(full_runs: dict[str, FullRun]) -> None:
    """``azldev image test``: placeholders substituted, ``--junit-xml`` appended, run in the
    suite's working-dir (here a copy of the checkout's suites, so reports land in tmp)."""
    qcow2 = full_runs["qcow2"]
    run = qcow2.started.result()
    _check_image_run(run, qcow2.junit, qcow2.reports)
    assert "the suite needs capability" not in run.output  # every suite applies here


def test_image_suite_on_the_vhd(full_runs: dict[str, FullRun]) -> None:
    vhd = full_runs["vhd"]
    _check_image_run(vhd.started.result(), vhd.junit, vhd.reports)


def _one_error(run: Run, junit: Path) -> str:
    """Every test an ERROR with the same one message; return it."""
    _assert_nothing_left(run.name)
    assert run.rc == 1, run.output
    outcomes = junit_outcomes(junit)
    assert outcomes and {o for o, _ in outcomes.values()} == {"error"}, outcomes
    messages = {m.strip().splitlines()[0] for _, m in outcomes.values()}
    assert len(messages) == 1, messages
    assert "azl unreachable hosts" in run.output
    return messages.pop()


def _run_identity(tmp_path: Path, *extra: str) -> tuple[Run, Path]:
    junit = tmp_path / "junit.xml"
    run = _pytest(
        ["suites/image/test_identity.py", "-p", "no:cacheprovider",
         "--azl-junit-dir", str(tmp_path / "reports"), "--junit-xml", str(junit), *extra],
        ROOT,
    )  # fmt: skip
    return run, junit


def test_corrupt_file_is_a_usage_error(images: BuiltImages, tmp_path: Path) -> None:
    """Checked before anything boots (issue 28 #12): exit 4, one line, nothing started."""
    bad = tmp_path / "corrupt.qcow2"
    head = images.qcow2.read_bytes()[:4]  # qcow2's magic, then garbage
    bad.write_bytes(head + os.urandom(1 << 20))
    run, _ = _run_identity(tmp_path, "--azl-image", str(bad))
    assert run.rc == 4, run.output
    assert f"ERROR: target 'image': field 'path': {bad}: qemu-img info as qcow2: " in run.output
    assert "Traceback" not in run.output
    _assert_nothing_left(run.name)


def test_file_that_never_boots_is_one_error(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as fh:
        fh.truncate(64 << 20)  # no boot sector: SeaBIOS finds nothing to boot
    targets = tmp_path / "azl-targets.yaml"
    targets.write_text(f"targets:\n  image: {{kind: image, path: {blank}, boot_timeout: 15}}\n")
    run, junit = _run_identity(tmp_path, "--azl-targets-file", str(targets),
                               "--azl-target", "image")  # fmt: skip
    message = _one_error(run, junit)
    assert f"image {blank}: sshd did not answer within the boot timeout (15 s)" in message
    # SeaBIOS found nothing to boot and writes nothing to the serial console (issue 28 #12)
    assert "the serial console stayed empty: the disk never booted" in message


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "disk.qcow2"
    run, _ = _run_identity(tmp_path, "--azl-image", str(missing))
    assert run.rc == 4, run.output
    assert f"target 'image': field 'path': no such file: {missing}" in run.output
    assert "Traceback" not in run.output
    _assert_nothing_left(run.name)


def test_claims_read_from_the_file_before_boot(images: BuiltImages, tmp_path: Path) -> None:
    """os-release read from a VHD's overlay (FUSE raw view, MBR, debugfs), file untouched."""
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(images.vhd), "-F",
                    "vpc", str(overlay)], check=True)  # fmt: skip
    before = images.vhd.stat().st_mtime_ns
    claimed, skipped = read_claims(overlay)
    assert skipped == ""
    assert claimed["ID"] == "azurelinux" and claimed["VERSION"] == "3.0.20251021"
    assert images.vhd.stat().st_mtime_ns == before
    blank = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "8M"], check=True)
    assert read_claims(blank) == ({}, "no ext2/3/4 file system among 1 partition(s)")


def _qemu_of(name: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"azl-vm-{name}-".encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_ctrl_c_during_boot_leaves_nothing(images: BuiltImages, tmp_path: Path) -> None:
    """SIGINT while the VM boots: the run ends, qemu, tap, overlay and bridge are gone."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "suites/image/test_identity.py", "-p",
         "no:cacheprovider", "--azl-image", str(images.qcow2), "--azl-junit-dir",
         str(tmp_path / "reports")],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,
    )  # fmt: skip
    name = run_name("image", proc.pid)
    try:
        while not _qemu_of(name):  # polled: qemu starts once the bridge and the seed are made
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out  # pytest's "interrupted"
    _assert_nothing_left(name)
