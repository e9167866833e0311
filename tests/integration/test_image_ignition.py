"""Image files provisioned by Ignition, end to end: the real Ignition (built from its Go
module) in the initramfs of a test image without cloud-init (tests/fixtures/ignition_image.py),
its config handed over by qemu's fw_cfg.

Two runs, started together (each boots one VM under TCG): the image suite through
``--azl-image`` with the provisioning detected from the file and a vTPM (``--azl-image-tpm``,
a real swtpm: a test of the run's own, next to the suite, reads it in the VM), and a run
whose Ignition
config is broken, which must be an ERROR as soon as Ignition says so on the console, not
after the boot timeout. Each is a real pytest in a subprocess; nothing of it may be left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.ignition_image import ensure_ignition_image
from tests.fixtures.image import BuiltImages
from tests.fixtures.junit import junit_outcomes
from tests.integration.test_image_targets import (
    ROOT,
    StartedRun,
    _assert_nothing_left,
    _one_error,
    _props,
)

# The broken run's boot timeout: it must end long before it (a hang would wait it out)
BROKEN_BOOT_TIMEOUT = 1500
# valid JSON and spec 3.x (so the harness hands it over), refused by Ignition itself: a
# relative path is not a file Ignition can write
BROKEN_CONFIG = {
    "ignition": {"version": "3.3.0"},
    "storage": {"files": [{"path": "etc/relative", "contents": {"source": "data:,x"}}]},
}


# Run next to the image suite: the VM has the TPM 2.0 that --azl-image-tpm gave it
TPM_TEST = """
def test_tpm_device(azl_host):
    res = azl_host.run("cat /sys/class/tpm/tpm0/tpm_version_major")
    assert res.rc == 0 and res.stdout.strip() == "2", (res.rc, res.stdout, res.stderr)
"""


@dataclass
class Started:
    run: StartedRun
    junit: Path
    reports: Path


@pytest.fixture(scope="module")
def image() -> BuiltImages:
    return ensure_ignition_image()


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, image: BuiltImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Started]]:
    """The runs of the selected tests below, all started at once."""
    selected = {item.name for item in request.session.items
                if item.module is request.module}  # type: ignore[attr-defined]
    started: dict[str, Started] = {}
    if "test_image_suite_on_an_ignition_image" in selected:
        tmp = tmp_path_factory.mktemp("ignition")
        (tmp / "test_tpm_seen.py").write_text(TPM_TEST)
        started["good"] = Started(StartedRun(
            ["suites/image", str(tmp / "test_tpm_seen.py"), "--azl-image", str(image.qcow2),
             "--azl-image-tpm", "-p", "no:cacheprovider",
             "--azl-junit-dir", str(tmp / "reports"), "--junit-xml", str(tmp / "junit.xml"),
             "--azl-command-timeout", "300"], ROOT,
        ), tmp / "junit.xml", tmp / "reports")  # fmt: skip
    if "test_a_broken_ignition_config_is_an_error_at_once" in selected:
        tmp = tmp_path_factory.mktemp("broken")
        config = tmp / "broken.ign"
        config.write_text(json.dumps(BROKEN_CONFIG))
        targets = tmp / "azl-targets.yaml"
        targets.write_text(
            f"targets:\n  image: {{kind: image, path: {image.qcow2}, ignition: {config}, "
            f"boot_timeout: {BROKEN_BOOT_TIMEOUT}}}\n"
        )
        started["broken"] = Started(StartedRun(
            ["suites/image/test_image_file.py", "-p", "no:cacheprovider",
             "--azl-targets-file", str(targets), "--azl-target", "image",
             "--azl-junit-dir", str(tmp / "reports"), "--junit-xml", str(tmp / "junit.xml")],
            ROOT,
        ), tmp / "junit.xml", tmp / "reports")  # fmt: skip
    yield started
    for s in started.values():
        s.run.result()  # a test that failed early must not leave its run behind


def test_image_suite_on_an_ignition_image(runs: dict[str, Started]) -> None:
    """Detected as Ignition (the image carries it, not cloud-init), provisioned by it (the
    login as ``core`` with the run's key is the proof: nothing else in the image makes
    users), and the image suite runs end to end with no ERROR."""
    good = runs["good"]
    run = good.run.result()
    _assert_nothing_left(run.name)
    assert run.rc in (0, 1), run.output
    outcomes = junit_outcomes(good.junit)
    errors = {k: v for k, v in outcomes.items() if v[0] == "error"}
    assert not errors, errors
    for name in ("test_os_release_matches_profile[image]", "test_release_files_agree[image]",
                 "test_file_claims_match_booted_system[image]", "test_ignition_done[image]",
                 "test_boot_time[image]", "test_sshd_presence[image]",
                 "test_tpm_device[image]"):  # fmt: skip
        assert outcomes[name][0] == "passed", (name, outcomes[name])
    skipped, why = outcomes["test_cloud_init_done[image]"]
    assert skipped == "skipped" and "provisioned by ignition" in why, why
    props = _props(good.reports)
    assert props["test_ignition_done[image]"]["azl.image_file.provisioning_why"] == (
        "the image carries Ignition and not cloud-init")
    boot = props["test_boot_time[image]"]
    assert 0 < float(boot["metric.boot_sshd_seconds"]) <= float(
        boot["metric.boot_ignition_seconds"])
    assert "PRIVATE KEY" not in run.output and "base64," not in run.output


def test_a_broken_ignition_config_is_an_error_at_once(runs: dict[str, Started]) -> None:
    """Ignition refuses the config in the initramfs and the boot stops there (as on ACL):
    every test is one ERROR naming Ignition's own message, long before the boot timeout."""
    run = runs["broken"].run.result()
    message = _one_error(run, runs["broken"].junit)
    failed = re.search(r"Ignition failed after (\d+) s, the boot stopped there", message)
    assert failed, message
    assert "CRITICAL : Ignition failed: config is not valid" in run.output  # Ignition's own line
    assert "PRIVATE KEY" not in run.output and "base64," not in run.output
    took = re.search(r"errors? in ([\d.]+)s", run.output.splitlines()[-1])  # pytest's own time
    assert took, run.output.splitlines()[-1]
    for seconds in (float(failed.group(1)), float(took.group(1))):
        assert seconds < BROKEN_BOOT_TIMEOUT / 2, f"{seconds:.0f} s: the timeout was waited out"
