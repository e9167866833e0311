"""Verdicts of every shipped control on the recorded hosts, and the reviewed table of them.

    python3 -m tests.data.hardening.verdicts            # print the table of the current code
    python3 -m tests.data.hardening.verdicts --write    # rewrite expected.yaml (then review
                                                         # the diff line by line against the
                                                         # recording before committing)

``expected.yaml``: recording -> control id -> ``"<outcome>: <found>"``; the unit tests compare
the checks' verdicts on each recording with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pytest_azlinux.facts import parse_facts
from pytest_azlinux.hardening import Evidence, Verdict, load_controls
from pytest_azlinux.hardening.baseline import plan_for

HERE = Path(__file__).parent
EXPECTED = HERE / "expected.yaml"


def recordings() -> list[str]:
    return sorted(p.name.removesuffix(".gather.txt") for p in HERE.glob("*.gather.txt"))


def evidence(name: str) -> Evidence:
    """The recording ``name`` parsed as the suite parses a host's output."""
    facts = parse_facts((HERE / f"{name}.facts.txt").read_text())
    text = (HERE / f"{name}.gather.txt").read_text()
    return Evidence.parse(name, text, plan_for(load_controls()), facts)


def verdicts(name: str) -> dict[str, Verdict]:
    ev = evidence(name)
    return {c.id: c.check.judge(ev) for c in load_controls()}


def table() -> dict[str, dict[str, str]]:
    return {
        name: {cid: f"{v.outcome}: {v.found}" for cid, v in verdicts(name).items()}
        for name in recordings()
    }


def main(argv: list[str]) -> int:
    data = table()
    if argv == ["--write"]:
        EXPECTED.write_text(
            "# Reviewed verdicts of every control on every recording (see README.md).\n"
            + yaml.safe_dump(data, sort_keys=True, width=200, allow_unicode=True)
        )
        print(f"wrote {EXPECTED}")
        return 0
    for name, rows in data.items():
        for cid, text in rows.items():
            print(f"{name:24} {cid:13} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
