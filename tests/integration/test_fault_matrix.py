"""The fault matrix on real lab hosts: a run that is cut off by SIGINT or SIGTERM, with and
without xdist, keeps every outcome it had, says which tests it cut off, leaves nothing
running on the hosts, and never shows a secret. docs/reliability.md lists what each test
here proves (the transport's own faults are in test_transport_faults.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.report.junit import read_cases
from tests.fixtures.child import default_sigint
from tests.fixtures.lab import lab_targets_with

SLOW_TESTS = '''
import time

def test_quick(azl_host):
    assert azl_host.run("true").rc == 0

def test_slow(azl_host):
    open(f"started-{azl_host.name}", "w").close()
    azl_host.run("sleep 600", timeout=900)   # cut off by the signal
'''
# everything a run's shells start carries AZL_SHELL=<tag> (transport/shell.py)
TAGS = ("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' <\"$f\" 2>/dev/null; done "
        "| sed -n 's/^AZL_SHELL=//p' | sort -u")


def shell_tags(host: Host) -> set[str]:
    """The tags of every persistent shell with processes on ``host`` (this test's own too)."""
    return set(host.run(TAGS, sudo=True).stdout.split())


def _wait_for(paths: list[Path], proc: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while not all(p.exists() for p in paths):
        assert proc.poll() is None, "the run ended before its slow tests started"
        assert time.monotonic() < deadline, f"not started within {within:g} s: {paths}"
        time.sleep(0.2)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
@pytest.mark.parametrize("workers", [0, 2], ids=["sequential", "xdist"])
def test_cut_off_run_keeps_outcomes_and_leaves_nothing(
    lab: Lab, lab_hosts: dict[str, Host], tmp_path: Path, how: signal.Signals, workers: int
) -> None:
    (tmp_path / "test_cut.py").write_text(SLOW_TESTS)
    before = {name: shell_tags(host) for name, host in lab_hosts.items()}  # our own shells
    targets = lab_targets_with(lab, tmp_path)
    args = [sys.executable, "-m", "pytest", "test_cut.py", "--azl-target=lab",
            f"--azl-targets-file={targets}", "--azl-junit-dir=reports", "-p", "no:cacheprovider",
            "-p", "no:randomly", "--rootdir", str(tmp_path)]
    args += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    with open(tmp_path / "out.txt", "wb") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,  # SIGINT as a user's terminal sends it
                                preexec_fn=default_sigint)
    try:
        # sequentially only the first host's slow test starts before the signal
        started = [tmp_path / f"started-{name}" for name in sorted(lab_hosts)]
        _wait_for(started[: 1 if not workers else 2], proc, within=300)
        os.killpg(proc.pid, how) if workers else proc.send_signal(how)
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = (tmp_path / "out.txt").read_text(errors="replace")
    cases = [c for xml in (tmp_path / "reports").glob("*.xml") for c in read_cases(xml)[1]]
    assert len(cases) == 2 * len(lab_hosts), output[-3000:]  # every collected test
    for case in cases:
        if case.name.startswith("test_slow"):
            assert case.outcome == "error", (case.name, case.outcome, case.message)
            assert "interrupt" in case.message or "not run" in case.message, case.message
        else:
            assert case.outcome in ("passed", "error"), (case.name, case.outcome)
            if case.outcome == "error":  # not reached, or running when the signal came
                assert "not run" in case.message or "interrupt" in case.message, case.message
    assert sum(c.outcome == "passed" for c in cases) >= 1
    for name, host in lab_hosts.items():  # nothing the run started is still running there
        deadline = time.monotonic() + 30
        while left := shell_tags(host) - before[name]:
            assert time.monotonic() < deadline, f"{name}: processes of the run left: {left}"
            time.sleep(0.5)


def test_secret_never_reaches_terminal_or_reports(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password from ${VAR} that a failing command and a local variable hold: shown as
    *** in the terminal (with --showlocals and -v) and in the reports."""
    secret = "s3cr3t-" + os.urandom(6).hex()
    monkeypatch.setenv("AZL_FM_SECRET", secret)
    data_dir = tmp_path / "run"
    data_dir.mkdir()
    (data_dir / "test_leak.py").write_text(
        "import os\n\n"
        "def test_leaks(azl_host):\n"
        "    token = os.environ['AZL_FM_SECRET']\n"
        "    azl_host.run('echo %s >/dev/null; exit 3', token, check=True)\n"
    )
    targets = lab_targets_with(lab, tmp_path, defaults={
        **_defaults(lab), "password": "${AZL_FM_SECRET}"})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_leak.py", "--azl-target=lab",
         f"--azl-targets-file={targets}", "--azl-junit-dir=reports", "-p", "no:cacheprovider",
         "--showlocals", "-v", "-p", "no:xdist", "--rootdir", str(data_dir)],
        cwd=data_dir, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "***" in proc.stdout
    assert secret not in proc.stdout and secret not in proc.stderr
    for xml in (data_dir / "reports").glob("*"):
        assert secret not in xml.read_text(errors="replace"), xml


def _defaults(lab: Lab) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(lab.targets_file.read_text())
    defaults: dict[str, object] = data["targets"]["lab"]["defaults"]
    return defaults
