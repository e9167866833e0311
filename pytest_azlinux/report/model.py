"""What one test did, in the shape every report writer and reader shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["passed", "failed", "error", "skipped"]
Better = Literal["higher", "lower"]

# Names of user properties the plugin puts on test reports.
PROP_HOST = "azl.host"
PROP_TARGET = "azl.target"
PROP_IMAGE = "azl.image"
PROP_FACTS = "azl.facts"
PROP_OUTCOME = "azl.outcome"
METRIC_PREFIX = "metric."


@dataclass(frozen=True)
class Metric:
    """A measured value with its unit and which direction is better."""

    name: str
    value: float
    unit: str = ""
    better: Better = "higher"


@dataclass
class CaseRecord:
    """One test case of a report."""

    nodeid: str
    classname: str
    name: str
    outcome: Outcome = "passed"
    message: str = ""
    details: str = ""
    time: float = 0.0
    host: str | None = None
    target: str | None = None
    image: str | None = None
    metrics: list[Metric] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``suites/n/test_x.py::TestA::test_b[h]`` -> (``suites.n.test_x.TestA``, ``test_b[h]``)."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    parts = rest.split("::") if rest else [""]
    return ".".join([module, *parts[:-1]]), parts[-1]
