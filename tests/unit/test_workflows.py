"""The GitHub Actions workflows the project ships are well-formed: actionlint finds nothing.

actionlint is built from its Go module by ``.ci/build-actionlint.sh`` (called from
``.ci/setup``, so CI always has it) and cached beside the test bed binaries. Its shellcheck
and pyflakes integrations are switched off, so the result does not depend on whether those
tools happen to be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted(
    [ROOT / ".github/workflows/ci.yml", *(ROOT / "examples/workflows").glob("*.yml")]
)


def _actionlint() -> str | None:
    cache = Path(os.environ.get("AZL_TESTBED_CACHE", "/var/cache/azl-testbed"))
    for candidate in (os.environ.get("AZL_ACTIONLINT"), str(cache / "bin/actionlint")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("actionlint")


ACTIONLINT = _actionlint()
pytestmark = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not built: run .ci/build-actionlint.sh (.ci/setup does)",
)


def findings(*paths: Path) -> list[str]:
    """actionlint's findings on ``paths``, one ``file:line:col: message [rule]`` each."""
    assert ACTIONLINT is not None
    done = subprocess.run(
        [ACTIONLINT, "-no-color", "-shellcheck=", "-pyflakes=", "-format", "{{json .}}",
         *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )
    # 0: no finding, 1: findings; anything else is actionlint failing to run at all.
    assert done.returncode in (0, 1), f"actionlint exited {done.returncode}: {done.stderr}"
    return [
        f"{Path(e['filepath']).name}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
        for e in json.loads(done.stdout or "[]")
    ]


def test_shipped_workflows_exist() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "canary-gate.yml", "nightly.yml"} <= names


def test_shipped_workflows_have_no_findings() -> None:
    found = findings(*WORKFLOWS)
    assert not found, "actionlint findings:\n" + "\n".join(found)


def test_a_broken_workflow_is_found(tmp_path: Path) -> None:
    """The check bites: a misspelt action input and an undefined expression are reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with: {fetch-depht: 1}\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    found = findings(broken)
    assert any('input "fetch-depht" is not defined' in f for f in found), found
    assert any('property "nope" is not defined' in f for f in found), found
