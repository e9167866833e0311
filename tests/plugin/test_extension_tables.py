"""The suite and target-kind tables: what a target may name under ``suites:``, and a toy
suite and a toy kind added exactly as docs/architecture.md says a third party adds one.

Each test runs a real pytest in a subprocess (pytester) against this machine.
"""

from __future__ import annotations

import pytest

from pytest_azlinux.builtin import SUITES

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
KNOWN = ", ".join(sorted(s.name for s in SUITES))


def _targets(pytester: pytest.Pytester, body: str) -> None:
    pytester.makefile(".yaml", **{"azl-targets": "targets:\n" + body})


def _one_error(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, out
    return errors[0]


@pytest.mark.parametrize(("suites", "expected"), [
    ("{image: {bogus: 1}}",
     "ERROR: target 'here': field 'suites.image.bogus': Extra inputs are not permitted"),
    ("{netwrok: {duration: 1}}",
     f"ERROR: target 'here': field 'suites.netwrok': unknown suite (known: {KNOWN})"),
], ids=["image-bogus", "misspelt-suite"])
def test_suite_settings_are_validated_and_unknown_suites_refused(
    pytester: pytest.Pytester, suites: str, expected: str
) -> None:
    """Every suite's settings are validated at start (the image suite's too), and a key no
    suite registered is an error naming the known suites, not silence."""
    _targets(pytester, f"  here:\n    kind: local\n    suites: {suites}\n")
    pytester.makepyfile(test_x="def test_a(azl_host):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=here")
    assert _one_error(result) == expected
    assert not (pytester.path / "ran").exists()


def test_image_profiles_dir_is_a_valid_image_setting(pytester: pytest.Pytester) -> None:
    _targets(pytester, "  here:\n    kind: local\n    suites: {image: {profiles_dir: [p]}}\n")
    pytester.makepyfile(test_x="def test_a(azl_host):\n    pass\n")
    pytester.runpytest_subprocess(*RUN, "--azl-target=here").assert_outcomes(passed=1)


# -- a toy suite, through the documented steps -------------------------------------------------
TOY_SETTINGS = """
    from pytest_azlinux.settings import SuiteSettings

    class ToySettings(SuiteSettings):
        suite = "toy"
        greeting: str = "hello"
"""
TOY_FIXTURES = """
    import pytest

    from toy_suite.settings import ToySettings

    @pytest.fixture
    def toy_greeting(azl_target):
        return azl_target.settings_for(ToySettings).greeting
"""
TOY_PLUGIN = """
    from pytest_azlinux.suite_table import Suite

    def pytest_azl_suites():
        return [Suite("toy", markers=("azl_toy: the toy suite",),
                      fixtures="toy_suite.fixtures",
                      settings="toy_suite.settings:ToySettings")]
"""
TOY_TEST = """
    import pytest

    pytestmark = pytest.mark.azl_toy

    def test_greets(azl_host, toy_greeting):
        assert azl_host.check_output("echo", toy_greeting) == "hi there"
"""


def _toy_suite(pytester: pytest.Pytester) -> None:
    package = pytester.mkpydir("toy_suite")
    (package / "__init__.py").write_text(pytester_dedent(TOY_PLUGIN))
    (package / "settings.py").write_text(pytester_dedent(TOY_SETTINGS))
    (package / "fixtures.py").write_text(pytester_dedent(TOY_FIXTURES))
    pytester.makepyfile(test_toy=TOY_TEST)


def pytester_dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip()


def test_a_toy_suite_registers_markers_fixtures_and_settings(pytester: pytest.Pytester) -> None:
    """A suite package: a settings model, a fixtures module, and one ``Suite`` entry returned
    from ``pytest_azl_suites`` in a plugin (here loaded with ``-p``, as a pytest11 entry
    point would)."""
    _toy_suite(pytester)
    _targets(pytester, "  here:\n    kind: local\n    suites: {toy: {greeting: hi there}}\n")
    result = pytester.runpytest_subprocess(*RUN, "-p", "toy_suite", "--strict-markers",
                                           "--azl-target=here", "-m", "azl_toy")
    result.assert_outcomes(passed=1)
    _targets(pytester, "  here:\n    kind: local\n    suites: {toy: {greting: hi}}\n")
    bad = pytester.runpytest_subprocess(*RUN, "-p", "toy_suite", "--azl-target=here")
    assert _one_error(bad) == ("ERROR: target 'here': field 'suites.toy.greting': "
                               "Extra inputs are not permitted")
    unregistered = pytester.runpytest_subprocess(*RUN, "--azl-target=here")
    assert "field 'suites.toy': unknown suite" in _one_error(unregistered)


def test_a_suite_entry_that_does_not_import_stops_the_start(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        from pytest_azlinux.suite_table import Suite

        def pytest_azl_suites():
            return [Suite("ghost", settings="ghost_suite.settings:GhostSettings")]
    """)
    pytester.makepyfile(test_x="def test_a():\n    open('ran', 'w').close()\n")
    line = _one_error(pytester.runpytest_subprocess(*RUN))
    assert line == ("ERROR: suite 'ghost': cannot import ghost_suite.settings: "
                    "No module named 'ghost_suite'")
    assert not (pytester.path / "ran").exists()


# -- a toy target kind, through the documented steps -------------------------------------------
TOY_KIND = """
    from typing import Literal

    from pydantic import Field

    from pytest_azlinux.kinds import Resolved, TargetKind
    from pytest_azlinux.targets import HostSpec, TargetConfig

    class ToyTarget(TargetConfig):
        kind: Literal["toy"]
        machines: int = Field(default=1, ge=1)

    def resolve(name, config, *, start):
        return Resolved([HostSpec(name=f"toy-{i}", target=name, access="local")
                         for i in range(config.machines)])

    def pytest_azl_target_kinds():
        return [TargetKind("toy", ToyTarget, "toy_kind:resolve")]
"""


def test_a_toy_target_kind_resolves_to_hosts(pytester: pytest.Pytester) -> None:
    """A kind: a model, a resolver, and one ``TargetKind`` entry returned from
    ``pytest_azl_target_kinds``; the targets file then takes ``kind: toy``."""
    pytester.makepyfile(toy_kind=TOY_KIND)
    pytester.makepyfile(test_toy="""
        def test_runs(azl_host):
            assert azl_host.check_output("echo", azl_host.name) == azl_host.name
    """)
    _targets(pytester, "  toys:\n    kind: toy\n    machines: 2\n")
    result = pytester.runpytest_subprocess(*RUN, "-p", "toy_kind", "--azl-target=toys", "-v")
    result.assert_outcomes(passed=2)
    assert {"test_toy.py::test_runs[toy-0] PASSED", "test_toy.py::test_runs[toy-1] PASSED"} <= {
        line.split(" [")[0].strip() for line in result.outlines}
    _targets(pytester, "  toys:\n    kind: toy\n    machines: 0\n")
    bad = pytester.runpytest_subprocess(*RUN, "-p", "toy_kind", "--azl-target=toys")
    assert "target 'toys': field 'machines': Input should be greater than or equal to 1" in (
        _one_error(bad))
    without = pytester.runpytest_subprocess(*RUN, "--azl-target=toys")
    assert ("unknown kind 'toy' (expected one of local, ssh, ansible, lab, cluster, image, "
            "recorded)") in _one_error(without)


def test_a_secret_too_short_to_redact_is_refused(pytester: pytest.Pytester) -> None:
    """A one-character password would turn every such character of the output into ***:
    exit 4 before anything connects, naming target, host and field."""
    _targets(pytester, "  pw:\n    kind: ssh\n    hosts:\n"
             "      - {name: h1, address: 127.0.0.1, port: 1, sudo_password: 'x'}\n")
    pytester.makepyfile(test_x="def test_a(azl_host):\n    pass\n")
    line = _one_error(pytester.runpytest_subprocess(*RUN, "--azl-target=pw"))
    assert line == ("ERROR: target 'pw': host 'h1': field 'sudo_password': a secret of 1 "
                    "characters is too short to redact from output safely (at least 8)")


def test_a_selected_kind_whose_resolver_does_not_import_stops_the_start(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(toy_kind=TOY_KIND.replace('"toy_kind:resolve"', '"ghost_kind:resolve"'))
    pytester.makepyfile(test_x="def test_a(azl_host):\n    open('ran', 'w').close()\n")
    _targets(pytester, "  toys:\n    kind: toy\n")
    line = _one_error(pytester.runpytest_subprocess(*RUN, "-p", "toy_kind", "--azl-target=toys"))
    assert line == ("ERROR: target kind 'toy': cannot import resolver ghost_kind:resolve: "
                    "No module named 'ghost_kind'")
    assert not (pytester.path / "ran").exists()
