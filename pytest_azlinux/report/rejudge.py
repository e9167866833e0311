"""Whole-target checks that ``azl report merge`` judges again over the union of the shards.

A test that judges a whole target (``azl_hosts``: every host of the target) sees only its own
shard's hosts under ``--azl-shard``: every shard can pass while the target as a whole fails
(shard 1's hosts all run image A, shard 2's all image B). Such a test judges through
:func:`judge_target`, which records on its test case what was judged:

- ``azl.rejudge`` = the check's name, a key of :data:`CHECKS`;
- ``azl.rejudge.target`` = the target's name;
- ``azl.evidence.<host>`` = what the check judged of that host.

The merge unions the evidence of the same test case from every shard and runs the same
check on it, so the merged report says what one unsharded run would have said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import ReportError
from .model import EVIDENCE_PREFIX, PROP_REJUDGE, PROP_REJUDGE_TARGET

# (target name, {host: evidence}) -> the failure message, or None when the target passes.
Check = Callable[[str, Mapping[str, str]], str | None]

ONE_IMAGE = "one-image"


def image_evidence(image_key: str, node_image_version: str | None) -> str:
    """What ``one-image`` judges of a host: its image key, and on an AKS node its node image
    version after a space (neither holds spaces: image keys are made of ``[A-Za-z0-9._-]``, as
    label values are). Reports written before node images were judged hold the key alone."""
    return f"{image_key} {node_image_version}" if node_image_version else image_key


def one_image(target: str, evidence: Mapping[str, str]) -> str | None:
    """All hosts of the target run one image, and all its AKS nodes one node image:
    ``{host: image_evidence(...)}``."""
    # not loaded by the report tools otherwise
    from ..posture.identity import check_one_image, check_one_node_image

    images: dict[str, str] = {}
    node_images: dict[str, str] = {}
    for host, value in evidence.items():
        key, _, node_image = value.partition(" ")
        images[host] = key
        if node_image:
            node_images[host] = node_image
    findings = check_one_image(images) + check_one_node_image(node_images)
    if not findings:
        return None
    return f"target {target}: " + "\n".join(f.line() for f in findings)


CHECKS: dict[str, Check] = {ONE_IMAGE: one_image}


def judge_target(record_property: Callable[[str, object], None], check: str, target: str,
                 evidence: Mapping[str, str]) -> str | None:
    """Record ``evidence`` ({host: value}) on the test case and judge it with ``check``.

    Returns the failure message (the test fails with it) or None.
    """
    judge = CHECKS.get(check)
    if judge is None:
        raise ReportError(f"no whole-target check named {check!r} (known: "
                          f"{', '.join(sorted(CHECKS))})")
    record_property(PROP_REJUDGE, check)
    record_property(PROP_REJUDGE_TARGET, target)
    for host, value in sorted(evidence.items()):
        record_property(f"{EVIDENCE_PREFIX}{host}", value)
    return judge(target, evidence)


def evidence_of(properties: Mapping[str, str]) -> dict[str, str]:
    """``{host: value}`` of a test case's ``azl.evidence.<host>`` properties."""
    return {key[len(EVIDENCE_PREFIX):]: value for key, value in properties.items()
            if key.startswith(EVIDENCE_PREFIX)}
