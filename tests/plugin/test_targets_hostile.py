"""Targets files that could hang or break a run: each is one line and exit 4 within a second
or two, or is accepted where it is valid YAML meaning a valid file.

Each case runs pytest in a subprocess (the real entry point) under a timeout, so a file that
makes the run hang fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

RUN = ("-p", "no:cacheprovider")
WITHIN = 30.0  # s for the whole child pytest, start-up included (the faults took minutes)


def alias_bomb() -> str:
    """Nine levels of nine aliases each: about 600 bytes that expand to 387 million values."""
    lines = ["targets:", "  t1:", "    kind: local", "    suites:", "      demo:",
             "        a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        lines.append(f"        a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def run_child(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, float]:
    pytester.makepyfile(test_x="def test_one(azl_host): pass\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(*RUN, *args, timeout=WITHIN)
    return result, time.monotonic() - started


def one_error_line(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, out
    return errors[0]


CASES: dict[str, tuple[str, list[str]]] = {
    # name: (file text, fragments of the one error line)
    "alias-bomb": (alias_bomb(), ["line 11", "invalid YAML", "(an alias bomb?)"]),
    "complex-key": ("targets:\n  ? [a, b]\n  : {kind: local}\n",
                    ["line 2", "a mapping key must be a plain value"]),
    "port-true": ("targets:\n  t1:\n    kind: ssh\n    hosts:\n"
                  "      - {name: a, address: 127.0.0.1, port: true}\n",
                  ["target 't1'", "field 'hosts[0].port'", "a port is a number, not true"]),
    "jump-port-false": ("targets:\n  t1:\n    kind: ssh\n    hosts:\n"
                        "      - {name: a, address: x, jump: {address: b, port: false}}\n",
                        ["field 'hosts[0].jump[0].port'", "not false"]),
    "recursive-alias": ("targets:\n  t1: &a [*a]\n", ["line 2", "contains it"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_targets_file_is_one_line_exit_4(pytester: pytest.Pytester, case: str) -> None:
    text, fragments = CASES[case]
    path = pytester.path / "azl-targets.yaml"
    path.write_text(text)
    result, took = run_child(pytester, "--azl-target=t1")
    line = one_error_line(result)
    assert str(path) in line, line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert took < WITHIN


def test_dev_zero_is_refused_past_the_size_limit(pytester: pytest.Pytester) -> None:
    result, _ = run_child(pytester, "--azl-target=t1", "--azl-targets-file=/dev/zero")
    assert one_error_line(result) == (
        "ERROR: /dev/zero: cannot read targets file: larger than 32 MiB")


def test_fifo_without_a_writer_is_refused_within_a_second(pytester: pytest.Pytester) -> None:
    fifo = pytester.path / "targets.fifo"
    os.mkfifo(fifo)
    result, _ = run_child(pytester, "--azl-target=t1", f"--azl-targets-file={fifo}")
    assert one_error_line(result) == (
        f"ERROR: {fifo}: cannot read targets file: a FIFO that nothing writes to (waited 1 s)")


def test_fifo_with_a_writer_is_read(pytester: pytest.Pytester) -> None:
    """A program writing the file into a FIFO (``<(generate-targets)``) still works."""
    fifo = pytester.path / "targets.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("w") as f:  # blocks until pytest opens the FIFO
            f.write("targets:\n  t1: {kind: local}\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result, _ = run_child(pytester, "--azl-target=t1", f"--azl-targets-file={fifo}")
    writer.join(5)
    result.assert_outcomes(passed=1)


def test_merge_keys_share_settings(pytester: pytest.Pytester) -> None:
    """``<<: *defaults`` is YAML's way to share a mapping: accepted, and the host's own
    keys override the merged ones."""
    (pytester.path / "azl-targets.yaml").write_text(
        "targets:\n"
        "  t1:\n"
        "    kind: local\n"
        "    suites:\n"
        "      network: &shared {min_gbps: 1, tolerance: 0.1}\n"
        "  t2:\n"
        "    <<: {kind: local, name: other}\n"
        "    suites:\n"
        "      network: {<<: *shared, tolerance: 0.3}\n")
    pytester.makeconftest("""
        def pytest_collection_finish(session):
            azl = session.config.stash[__import__("pytest_azlinux.runstate",
                                                  fromlist=["SESSION_KEY"]).SESSION_KEY]
            print("SETTINGS", azl.target("t2").settings("network"), azl.target("t2").kind)
    """)
    result, _ = run_child(pytester, "--azl-target=t1,t2", "-s")
    result.assert_outcomes(passed=2)
    assert "SETTINGS {'min_gbps': 1, 'tolerance': 0.3} local" in result.stdout.str()


def test_unset_variable_of_a_target_not_selected_does_not_stop_the_run(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.path / "azl-targets.yaml"
    path.write_text(
        "targets:\n"
        "  here: {kind: local}\n"
        "  fleet:\n"
        "    kind: ssh\n"
        "    hosts:\n"
        "      - {name: a, address: 127.0.0.1, password: '${AZL_SURELY_UNSET_33}'}\n")
    env_before = os.environ.pop("AZL_SURELY_UNSET_33", None)
    assert env_before is None
    result, _ = run_child(pytester, "--azl-target=here")
    result.assert_outcomes(passed=1)
    selected, _ = run_child(pytester, "--azl-target=fleet")
    assert one_error_line(selected) == (
        f"ERROR: {path}: target 'fleet': field 'hosts[0].password': "
        "environment variable AZL_SURELY_UNSET_33 is not set")
