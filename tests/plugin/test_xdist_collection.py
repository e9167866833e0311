"""``-n 2`` and ``-n auto`` collect exactly what the same command collects without xdist.

A project laid out like this checkout (``testpaths = ["suites"]``, ``addopts`` loading a
plugin, the project's own tests beside the suites) is run from its root and from a
subdirectory, with no targets file option, with ``--azl-targets-file=PATH`` and with
``--azl-targets-file PATH`` (two words, a file outside the project): every xdist worker must
collect the node ids the run without xdist collects. Each process writes what it collected
(a small plugin, ``-p azl_collected``), so the comparison does not depend on output format.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.child import ROOT

PROBE = '''
import os
from pathlib import Path


def pytest_configure(config):
    moved = os.environ.get("AZL_MOVE_CONTROLLER_TO")
    if moved and "PYTEST_XDIST_WORKER" not in os.environ:
        os.chdir(moved)  # after start-up, before xdist starts the workers


def pytest_collection_finish(session):
    who = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = Path(os.environ["AZL_COLLECTED_DIR"]) / who
    out.write_text("".join(f"{item.nodeid}\\n" for item in session.items))
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "suites" / "image").mkdir(parents=True)
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["suites"]\naddopts = "-p pytester"\n')
    (root / "suites" / "image" / "test_identity.py").write_text(
        "def test_identity(azl_host):\n    pass\n\ndef test_other(azl_host):\n    pass\n")
    (root / "tests" / "unit" / "test_own.py").write_text("def test_own():\n    pass\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "targets.yaml").write_text("targets:\n  here: {kind: local}\n")
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "azl_collected.py").write_text(PROBE)
    return root


def collections(
    project: Path, where: Path, *args: str, move_to: Path | None = None
) -> dict[str, list[str]]:
    """What each process of ``pytest ARGS`` run in ``where`` collected, by process
    (``main`` without xdist, else the worker ids); ``move_to``: the directory the run's
    first process changes to once pytest has started."""
    out = project.parent / "collected"
    if out.exists():
        for old in out.iterdir():
            old.unlink()
    out.mkdir(exist_ok=True)
    env = {**os.environ, "AZL_COLLECTED_DIR": str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(project.parent / "plugin")])}
    if move_to is not None:
        env["AZL_MOVE_CONTROLLER_TO"] = str(move_to)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "azl_collected", "-q",
         *args],
        cwd=where, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return {p.name: sorted(p.read_text().splitlines()) for p in sorted(out.iterdir())}


TARGETS = {
    "built-in target": lambda p: ["--azl-target=local"],
    "--azl-targets-file=PATH": lambda p: [
        "--azl-target=here", f"--azl-targets-file={p.parent / 'elsewhere' / 'targets.yaml'}"],
    "--azl-targets-file PATH": lambda p: [
        "--azl-target", "here", "--azl-targets-file", str(p.parent / "elsewhere" / "targets.yaml")],
}


@pytest.mark.parametrize("where", ["root", "suites"])
@pytest.mark.parametrize("targets", sorted(TARGETS))
def test_workers_collect_what_the_run_without_xdist_collects(
    project: Path, where: str, targets: str
) -> None:
    cwd = project if where == "root" else project / where
    args = TARGETS[targets](project)
    alone = collections(project, cwd, *args)["main"]
    if where == "root":
        assert alone == ["suites/image/test_identity.py::test_identity[localhost]",
                         "suites/image/test_identity.py::test_other[localhost]"]
    for workers in (["-n", "2"], ["-n", "auto"]) if targets == "built-in target" else (
            ["-n", "2"],):
        seen = collections(project, cwd, *args, *workers)
        worker_ids = [w for w in seen if w.startswith("gw")]
        assert worker_ids, seen
        for worker in worker_ids:
            assert seen[worker] == alone, f"{' '.join(workers)}: {worker} collected otherwise"



@pytest.mark.parametrize("where", ["root", "tests"])
def test_workers_collect_the_same_when_the_controller_directory_moves(
    project: Path, where: str
) -> None:
    """Workers used to start pytest again in the directory the controller was in by then:
    moved to the project's parent, they lost the rootdir, testpaths and addopts and collected
    the whole parent (``checkout/tests/unit/...``), as reported with the lab target."""
    cwd = project if where == "root" else project / where
    alone = collections(project, cwd, "--azl-target=local", move_to=project.parent)["main"]
    assert alone == ([f"{where}/unit/test_own.py::test_own"] if where == "tests" else
                     ["suites/image/test_identity.py::test_identity[localhost]",
                      "suites/image/test_identity.py::test_other[localhost]"])
    seen = collections(project, cwd, "--azl-target=local", "-n", "2", move_to=project.parent)
    assert {w: seen.get(w) for w in ("gw0", "gw1")} == {"gw0": alone, "gw1": alone}
