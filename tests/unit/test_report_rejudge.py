"""``azl report merge`` judges whole-target checks again over the union of the shards.

Each "shard" is a real pytest run of the plugin (pytester, the ``local`` target) whose
whole-target test judges the hosts that shard saw through ``judge_target``; the collector
writes the reports, the merge reads them back. The unsharded run judges every host at once:
the merge must say what it says.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from pytest_azlinux.cli import main
from pytest_azlinux.errors import ReportError
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.model import CaseRecord
from pytest_azlinux.report.rejudge import ONE_IMAGE, image_evidence, judge_target
from pytest_azlinux.report.rejudge import one_image as judge_one_image

SUITE = dedent(
    """
    import pytest
    from pytest_azlinux.report.rejudge import ONE_IMAGE, judge_target

    def test_one_image(azl_target, record_property):
        if {skip!r}:
            pytest.skip("not applicable here")
        failure = judge_target(record_property, ONE_IMAGE, "pool", {images!r})
        if failure:
            pytest.fail(failure, pytrace=False)

    def test_reachable(azl_host):
        assert azl_host.check_output("echo ok").strip() == "ok"
    """
)
A, B, C = "azurelinux-3.0.20251021", "azurelinux-3.0.20251021-hwe", "mariner-2.0.20240609"


def shard(pytester: pytest.Pytester, out: Path, images: dict[str, str],
          skip: bool = False) -> Path:
    """One run whose whole-target test saw ``images`` ({host: image key})."""
    pytester.makepyfile(test_fleet=SUITE.format(images=images, skip=skip))
    result = pytester.runpytest("-p", "no:cacheprovider", "--azl-target", "local",
                                "--azl-junit-dir", str(out))
    assert result.ret in (0, 1), result.stdout.str()
    return out


def merge(capsys: pytest.CaptureFixture[str], out: Path, *shards: Path,
          strict: bool = False) -> str:
    capsys.readouterr()
    argv = ["report", "merge", str(out), *map(str, shards)] + (["--strict"] if strict else [])
    assert main(argv) == 0
    return capsys.readouterr().err


# The whole-target test runs on no host: its case is in the target's report.
TARGET_REPORT = "target-local.xml"


def one_image(directory: Path) -> CaseRecord:
    return next(c for c in read_cases(directory / TARGET_REPORT)[1]
                if c.name == "test_one_image")


def outcomes(directory: Path) -> dict[str, str]:
    """test id -> outcome over every per-image report of a run."""
    return {c.nodeid: c.outcome for path in sorted(directory.glob("*.xml"))
            for c in read_cases(path)[1]}


def test_shards_that_each_pass_merge_to_the_failure_of_the_whole_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = {"node-1": A, "node-2": A, "node-3": C, "node-4": C}
    whole = shard(pytester, pytester.path / "whole", fleet)
    s1 = shard(pytester, pytester.path / "s1", {"node-1": A, "node-2": A})
    s2 = shard(pytester, pytester.path / "s2", {"node-3": C})
    s3 = shard(pytester, pytester.path / "s3", {"node-4": C})
    assert [one_image(s).outcome for s in (s1, s2, s3)] == ["passed"] * 3
    expected = one_image(whole)
    assert expected.outcome == "failed"
    assert (f"target pool: images: expected one image on every host, found 2 images "
            f"({A}: node-1, node-2; {C}: node-3, node-4)") in expected.message

    merged = pytester.path / "merged"
    err = merge(capsys, merged, s1, s2, s3, strict=True)  # expected to differ: no conflict
    assert "differs between shards" not in err
    case = one_image(merged)
    assert case.outcome == "failed"
    assert case.message == expected.message  # what the unsharded run said
    assert case.details == expected.details
    assert {k: v for k, v in case.properties.items() if k.startswith("azl.evidence.")} == {
        f"azl.evidence.{host}": image for host, image in fleet.items()}
    assert case.properties["azl.merge.rejudged"] == f"{s1}: passed; {s2}: passed; {s3}: passed"
    assert "azl.merge.conflict" not in case.properties
    assert 'failures="1"' in (merged / TARGET_REPORT).read_text()  # counts follow the verdict
    assert outcomes(merged) == outcomes(whole)
    assert sorted(p.name for p in merged.glob("*.xml")) == sorted(
        p.name for p in whole.glob("*.xml"))

    # The merged report keeps every host's evidence: merging it again with nothing new, or
    # in two steps, gives the same verdict.
    two_step = pytester.path / "two-step"
    first = pytester.path / "first"
    merge(capsys, first, s1, s2)
    assert one_image(first).outcome == "failed"  # A and C already
    merge(capsys, two_step, first, s3)
    assert one_image(two_step).message == expected.message


def test_a_long_message_is_bounded_as_in_the_unsharded_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = {f"aks-nodepool1-31415926-vmss{i:06x}": (A, C)[i % 2] for i in range(120)}
    whole = shard(pytester, pytester.path / "whole", fleet)
    s1 = shard(pytester, pytester.path / "s1", {h: i for h, i in fleet.items() if i == A})
    s2 = shard(pytester, pytester.path / "s2", {h: i for h, i in fleet.items() if i == C})
    merged = pytester.path / "merged"
    merge(capsys, merged, s1, s2)
    expected, case = one_image(whole), one_image(merged)
    assert len(expected.message) == 2000 and expected.message.endswith("…")
    assert (case.outcome, case.message, case.details) == (
        "failed", expected.message, expected.details)
    assert len(case.details) > 4000  # the full text names every node


def test_shards_on_one_image_stay_passed(pytester: pytest.Pytester,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    s1 = shard(pytester, pytester.path / "s1", {"node-1": A, "node-3": A})
    s2 = shard(pytester, pytester.path / "s2", {"node-2": A})
    merged = pytester.path / "merged"
    merge(capsys, merged, s1, s2)
    case = one_image(merged)
    assert case.outcome == "passed" and not case.message
    assert sorted(k for k in case.properties if k.startswith("azl.evidence.")) == [
        "azl.evidence.node-1", "azl.evidence.node-2", "azl.evidence.node-3"]
    assert 'failures="0"' in (merged / TARGET_REPORT).read_text()


def test_a_failing_shard_is_judged_over_all_hosts(pytester: pytest.Pytester,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    s1 = shard(pytester, pytester.path / "s1", {"node-1": A, "node-2": B})
    s2 = shard(pytester, pytester.path / "s2", {"node-3": C})
    assert "2 images" in one_image(s1).message
    merged = pytester.path / "merged"
    merge(capsys, merged, s1, s2)
    case = one_image(merged)
    assert case.outcome == "failed"
    assert f"3 images ({A}: node-1; {B}: node-2; {C}: node-3)" in case.message
    assert case.properties["azl.merge.rejudged"] == f"{s1}: failed; {s2}: passed"


def test_a_copy_that_judged_nothing_is_merged_as_any_test(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """A skipped copy has no evidence: no re-judging, the worst outcome is kept."""
    s1 = shard(pytester, pytester.path / "s1", {"node-1": A})
    s2 = shard(pytester, pytester.path / "s2", {"node-2": A, "node-3": C})
    s3 = shard(pytester, pytester.path / "s3", {}, skip=True)
    merged = pytester.path / "merged"
    err = merge(capsys, merged, s1, s2, s3)
    case = one_image(merged)
    assert case.outcome == "failed" and "2 images" in case.message  # s2's, not s3's skip
    assert "azl.merge.rejudged" not in case.properties
    assert case.properties["azl.merge.conflict"] == f"{s1}: passed; {s2}: failed; {s3}: skipped"
    assert "test_one_image differs between shards" in err and "kept failed" in err


def test_judge_target_records_what_it_judged() -> None:
    recorded: list[tuple[str, object]] = []
    failure = judge_target(lambda k, v: recorded.append((k, v)), ONE_IMAGE, "pool",
                           {"b": C, "a": A})
    assert recorded == [("azl.rejudge", "one-image"), ("azl.rejudge.target", "pool"),
                        ("azl.evidence.a", A), ("azl.evidence.b", C)]
    assert failure is not None and failure.startswith("target pool: images:")
    assert judge_target(lambda k, v: None, ONE_IMAGE, "pool", {"a": A}) is None
    with pytest.raises(ReportError, match="no whole-target check named 'one-kernel'"):
        judge_target(lambda k, v: None, "one-kernel", "pool", {"a": A})


# One OS image under two AKS node images: a pool half upgraded from one weekly node image to
# the next (AgentBaker's YYYYMM.DD.PATCH versions).
NODE_OLD, NODE_NEW = "AKSAzureLinux-V3gen2-202611.01.0", "AKSAzureLinux-V3gen2-202611.08.0"


def test_mixed_node_images_are_named_with_their_nodes() -> None:
    evidence = {"n1": image_evidence(A, NODE_OLD), "n2": image_evidence(A, NODE_OLD),
                "n3": image_evidence(A, NODE_NEW), "n4": image_evidence(A, NODE_NEW)}
    failure = judge_one_image("pool", evidence)
    assert failure == (
        "target pool: node_images: expected one node image version on every node, found 2 "
        f"node image versions ({NODE_OLD}: n1, n2; {NODE_NEW}: n3, n4)\n"
        "    source: the target's expect.allow_mixed_images is false (set it to true for a "
        "mixed fleet)")
    # both findings when the OS images differ too; evidence of hosts that are no AKS nodes
    # (and reports written before node images were judged) is the image key alone
    both = judge_one_image("pool", {"n1": image_evidence(A, NODE_OLD),
                                    "n2": image_evidence(C, NODE_NEW), "vm": A})
    assert both is not None and "images: expected one image" in both
    assert f"{NODE_OLD}: n1; {NODE_NEW}: n2" in both and "vm" not in both.split("node_images")[1]
    assert judge_one_image("pool", {"n1": image_evidence(A, NODE_NEW), "vm": A}) is None


def test_shards_each_on_one_node_image_merge_to_the_mixed_pool(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    s1 = shard(pytester, pytester.path / "s1", {"n1": image_evidence(A, NODE_OLD)})
    s2 = shard(pytester, pytester.path / "s2", {"n2": image_evidence(A, NODE_NEW)})
    assert [one_image(s).outcome for s in (s1, s2)] == ["passed"] * 2
    merged = pytester.path / "merged"
    merge(capsys, merged, s1, s2)
    case = one_image(merged)
    assert case.outcome == "failed"
    assert f"2 node image versions ({NODE_OLD}: n1; {NODE_NEW}: n2)" in case.message
