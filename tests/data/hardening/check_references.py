"""Check every control's ComplianceAsCode references against a ComplianceAsCode git checkout.

    python3 -m tests.data.hardening.check_references PATH_TO_CAC_GIT_DIR [REV]

For each ``cac:`` rule id: a ``rule.yml`` of that name exists under ``linux_os/guide`` at REV
(default HEAD), and the control's ``cce:`` is that file's ``cce@rhel9`` (or both are absent).
Prints every mismatch; exit 1 if any.
"""

from __future__ import annotations

import subprocess
import sys

from pytest_azlinux.hardening import load_controls


def _git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, *args], capture_output=True, text=True, check=True
    ).stdout


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__)
        return 2
    repo, rev = argv[0], (argv[1] if len(argv) == 2 else "HEAD")
    paths = {}
    for path in _git(repo, "ls-tree", "-r", "--name-only", rev, "linux_os/guide").splitlines():
        if path.endswith("/rule.yml"):
            paths.setdefault(path.split("/")[-2], path)
    problems = 0
    for control in load_controls():
        for ref in control.references:
            if not ref.cac:
                continue
            path = paths.get(ref.cac)
            if path is None:
                print(f"{control.id}: no rule {ref.cac}")
                problems += 1
                continue
            cce = None
            for line in _git(repo, "show", f"{rev}:{path}").splitlines():
                if line.strip().startswith("cce@rhel9:"):
                    cce = line.split(":", 1)[1].strip()
            if cce != ref.cce:
                print(f"{control.id}: {ref.cac}: controls say {ref.cce}, ComplianceAsCode {cce}")
                problems += 1
    print(f"{problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
