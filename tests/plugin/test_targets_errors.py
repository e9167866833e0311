"""Broken targets files: one line ``ERROR: <file>: target '<t>': field '<f>': ...``, exit 4.

Each case runs pytest in a subprocess (the real entry point) and checks there is no
traceback, the message is one line, and it names the file, the target and the field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

H = "targets:\n  t1:\n    kind: ssh\n    hosts:\n"
CASES: dict[str, tuple[str, list[str]]] = {
    # name: (file text, fragments the one error line must contain)
    "bad-yaml": ("targets:\n  t1: [unclosed\n", ["line 3", "invalid YAML"]),
    "unknown-kind": ("targets:\n  t1:\n    kind: vmware\n",
                     ["target 't1'", "field 'kind'", "unknown kind 'vmware'"]),
    "missing-kind": ("targets:\n  t1:\n    hosts: []\n", ["target 't1'", "field 'kind'"]),
    "missing-address": (H + "      - name: a\n",
                        ["target 't1'", "field 'hosts[0].address'", "required"]),
    "hosts-not-a-list": ("targets:\n  t1:\n    kind: ssh\n    hosts: 3\n",
                         ["target 't1'", "field 'hosts'", "list"]),
    "port-not-a-number": (H + "      - {name: a, address: x, port: abc}\n",
                          ["field 'hosts[0].port'", "integer"]),
    "port-out-of-range": (H + "      - {name: a, address: x, port: 70000}\n",
                          ["field 'hosts[0].port'", "65535"]),
    "sudo-not-a-bool": (H + "      - {name: a, address: x, sudo: maybe}\n",
                        ["field 'hosts[0].sudo'", "boolean"]),
    "duplicate-host": (H + "      - {name: a, address: x}\n      - {name: a, address: y}\n",
                       ["target 't1'", "field 'hosts'", "duplicate host name 'a'"]),
    "unknown-field": (H + "      - {name: a, address: x, passwd: y}\n",
                      ["field 'hosts[0].passwd'", "Extra inputs are not permitted"]),
    "bad-host-key-policy": (
        "targets:\n  t1:\n    kind: ssh\n    defaults: {host_key_policy: yolo}\n"
        "    hosts:\n      - {name: a, address: x}\n",
        ["field 'defaults.host_key_policy'", "'strict' or 'accept-new'"]),
    "bad-jump": (H + "      - {name: a, address: x, jump: 'u@h@x:p'}\n",
                 ["field 'hosts[0].jump'", "not a jump host spec"]),
    "missing-env-var": (H + "      - {name: a, address: x, password: '${AZL_SURELY_UNSET}'}\n",
                        ["target 't1'", "field 'hosts[0].password'",
                         "environment variable AZL_SURELY_UNSET is not set"]),
    "empty-hosts": ("targets:\n  t1:\n    kind: ssh\n    hosts: []\n",
                    ["field 'hosts'", "at least 1"]),
    "target-not-a-mapping": ("targets:\n  t1: just-a-string\n",
                             ["target 't1'", "must be a mapping"]),
    "bad-host-name": (H + "      - {name: 'bad name', address: x}\n",
                      ["field 'hosts[0].name'", "'bad name'"]),
    "unknown-top-level-key": ("target:\n  t1: {kind: local}\n",
                              ["unknown top-level key", "target"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_targets_file_is_one_line_usage_error(pytester: pytest.Pytester, case: str) -> None:
    text, fragments = CASES[case]
    path = pytester.path / "azl-targets.yaml"
    path.write_text(text)
    pytester.makepyfile(test_x="def test_one(azl_host): pass\n")
    result = pytester.runpytest_subprocess("--azl-target=t1", "-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, out
    assert "Traceback" not in out
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, out
    line = errors[0]
    assert str(path) in line, line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"


def test_unknown_target_name_lists_the_known_ones(pytester: pytest.Pytester) -> None:
    path = pytester.path / "azl-targets.yaml"
    path.write_text("targets:\n  here: {kind: local}\n")
    result = pytester.runpytest_subprocess("--azl-target=nope", "-p", "no:cacheprovider")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert f"{path}: unknown target 'nope' (known: here, lab, local)" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_targets_file_option(pytester: pytest.Pytester) -> None:
    missing = pytester.path / "nowhere.yaml"
    result = pytester.runpytest_subprocess(
        "--azl-target=t1", f"--azl-targets-file={missing}", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert f"ERROR: {missing}: cannot read targets file" in result.stderr.str()


def test_bad_shard_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--azl-target=local", "--azl-shard=3/2",
                                           "-p", "no:cacheprovider")
    assert result.ret == 4
    assert "ERROR: --azl-shard: expected INDEX/COUNT" in result.stderr.str()


def test_a_shard_without_hosts_runs_nothing_and_reports_nothing(
    pytester: pytest.Pytester,
) -> None:
    """The local target has one host: shard 2/2 holds none, so its host tests are not its
    own (no placeholder case, no report for a made-up target)."""
    pytester.makepyfile(test_shard="""
        def test_each(azl_host):
            pass

        def test_all(azl_hosts):
            pass
    """)
    reports = pytester.path / "reports"
    first = pytester.runpytest_subprocess("--azl-target=local", "--azl-shard=1/2",
                                          f"--azl-junit-dir={reports}", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    second = pytester.runpytest_subprocess("--azl-target=local", "--azl-shard=2/2",
                                           f"--azl-junit-dir={reports}-2", "-p",
                                           "no:cacheprovider")
    assert second.ret == pytest.ExitCode.NO_TESTS_COLLECTED, second.stdout.str()
    assert "2 deselected" in second.stdout.str()
    assert not list(Path(f"{reports}-2").glob("target-*.xml"))
