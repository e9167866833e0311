"""The verdict block groups a run's skips by reason: a real pytest run (pytester subprocess)
on ``--azl-target local``, read back from the terminal, with and without xdist (the
controller groups what the workers reported)."""

from __future__ import annotations

import pytest

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")

SUITE = """
import pytest

@pytest.mark.parametrize("control", [f"AZL-T-{i:02d}" for i in range(12)])
def test_control(azl_host, record_property, control):
    record_property("azl.control.id", control)
    pytest.skip("not applicable: suites.hardening.skip: this target shares the machine")

@pytest.mark.parametrize("seconds", [3, 7, 11])
def test_slow_boot(azl_host, seconds):
    pytest.skip(f"{azl_host.name}: booted in {seconds} s, more than the 2 s budget")

def test_destructive(azl_host):
    pytest.skip("destructive: run with --azl-allow-destructive")

def test_ok(azl_host):
    pass
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_the_verdict_block_counts_skips_by_reason(pytester: pytest.Pytester,
                                                  xdist: tuple[str, ...]) -> None:
    pytester.makepyfile(test_skips=SUITE)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local", *xdist,
                                           "--azl-junit-dir=reports", timeout=300)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "azl verdict" in line)
    block = lines[start + 1:start + 7]
    assert block[0].endswith(": PASS 1 · SKIP 16"), block
    assert block[1:5] == [
        "skipped 16, by reason:",
        "    12 hardening controls: not applicable: suites.hardening.skip: this target "
        "shares the machine",
        "    3 tests (test_slow_boot): localhost: booted in <n> s, more than the 2 s budget",
        "    1 test (test_destructive): destructive: run with --azl-allow-destructive",
    ]
    assert block[5].startswith("reports: ")
    assert "Skipped, by reason (16)" in (pytester.path / "reports" / "index.html").read_text()
