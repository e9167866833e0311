"""The core's pure parts: one SSH merge, robust targets files, settings, host ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import Field

from pytest_azlinux import settings
from pytest_azlinux.errors import SettingsError, TargetsError
from pytest_azlinux.session import SelectedTarget, host_params
from pytest_azlinux.targets import (
    ClusterTarget,
    SshSettings,
    check_key_files,
    load_targets,
    merge_ssh_spec,
    parse_targets,
)
from tests.fixtures.timing import best_of


def test_tilde_expanded_for_jump_hosts_and_cluster_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    layer = SshSettings.model_validate({
        "identity_file": "~/.ssh/k", "known_hosts": "~/.ssh/kh",
        "jump": [{"address": "bastion", "identity_file": "~/.ssh/jk"}],
    })
    spec = merge_ssh_spec(name="n1", address="10.0.0.4", target="pool", layers=(layer,))
    assert spec.identity_file == "/home/op/.ssh/k"
    assert spec.known_hosts == "/home/op/.ssh/kh"
    assert spec.jump[0].identity_file == "/home/op/.ssh/jk"
    cluster = ClusterTarget.model_validate({"kind": "cluster", "pool": "p", "ssh": {
        "identity_file": "~/.ssh/node", "jump": "azureuser@bastion"}})
    node = merge_ssh_spec(name="aks-1", address="10.0.0.5", target="pool", layers=(cluster.ssh,))
    assert node.identity_file == "/home/op/.ssh/node" and node.jump[0].user == "azureuser"


def test_host_settings_win_over_defaults() -> None:
    host = SshSettings.model_validate({"port": 2222})
    defaults = SshSettings.model_validate({"port": 22, "user": "azureuser", "sudo": True})
    spec = merge_ssh_spec(name="h", address="a", target="t", layers=(host, defaults))
    assert (spec.port, spec.user, spec.sudo) == (2222, "azureuser", True)


def test_missing_key_file_names_target_host_field_and_file(tmp_path: Path) -> None:
    layer = SshSettings.model_validate({"jump": [{"address": "b",
                                                  "identity_file": str(tmp_path / "gone")}]})
    spec = merge_ssh_spec(name="h1", address="a", target="fleet", layers=(layer,))
    with pytest.raises(TargetsError) as err:
        check_key_files(spec)
    assert str(err.value) == (f"target 'fleet': host 'h1': field 'jump[0].identity_file': "
                              f"no such key file: {tmp_path / 'gone'}")


def test_duplicate_key_is_refused_with_its_lines() -> None:
    text = "targets:\n  a:\n    kind: local\n  a:\n    kind: local\n"
    with pytest.raises(TargetsError, match=r"t.yaml: line 4: invalid YAML: duplicate key 'a' "
                                           r"\(first on line 2\)"):
        parse_targets(text, "t.yaml")


def test_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(b"targets:\n  a:\n    description: caf\xe9\n    kind: local\n")
    with pytest.raises(TargetsError) as err:
        load_targets(path)
    assert str(err.value) == f"{path}: line 3: not UTF-8 text (byte 0xe9 at offset 34)"


def _big_file(hosts: int) -> str:
    rows = "".join(f"      - {{name: h{i}, address: 198.18.{i // 250}.{i % 250}}}\n"
                   for i in range(hosts))
    return f"targets:\n  big:\n    kind: ssh\n    hosts:\n{rows}"


def test_host_resolution_grows_linearly() -> None:
    """2k vs 16k hosts: parse, merge and number them. Linear is 8x; a quadratic step
    (a count() per host, a scan per lookup) shows as 64x. The ratio bound leaves room for
    noise without letting quadratic through; each size is the best of three runs in CPU time
    (``best_of``), so a neighbour's load does not decide it."""
    from pytest_azlinux.targets import ssh_host_specs

    def resolve(hosts: int) -> Callable[[], object]:
        text = _big_file(hosts)

        def step() -> None:
            target = parse_targets(text, "big.yaml")["big"]
            specs = ssh_host_specs(target, "big")  # type: ignore[arg-type]
            params = host_params([SelectedTarget("big", target, tuple(specs))])
            assert len({p.id for p in params}) == hosts

        return step

    resolve(500)()  # warm imports
    small, large = best_of(3, resolve(2000)), best_of(3, resolve(16000))
    assert large / small < 20, f"16k hosts {large:.3f} s, 2k hosts {small:.3f} s"


def test_same_host_name_in_two_targets_gets_target_prefixed_ids() -> None:
    one = parse_targets("targets:\n  a:\n    kind: local\n  b:\n    kind: local\n", "t")
    from pytest_azlinux.targets import local_host_specs

    selected = [SelectedTarget(n, one[n], tuple(local_host_specs(one[n], n)))  # type: ignore[arg-type]
                for n in ("a", "b")]
    assert [p.id for p in host_params(selected)] == ["a:localhost", "b:localhost"]


class _Demo(settings.SuiteSettings):
    suite = "demo"
    repetitions: int = Field(default=3, ge=1)


def test_suite_settings_errors_name_target_and_field() -> None:
    with pytest.raises(SettingsError) as err:
        settings.parse(_Demo, {"repetitions": 0}, "lab")
    assert str(err.value) == ("target 'lab': field 'suites.demo.repetitions': "
                              "Input should be greater than or equal to 1")
    with pytest.raises(SettingsError, match=r"suites.demo': must be a mapping, got list"):
        settings.parse(_Demo, [1], "lab")
    with pytest.raises(SettingsError, match=r"suites.demo.colour': Extra inputs"):
        settings.parse(_Demo, {"colour": "red"}, "lab")
    assert settings.parse(_Demo, None, "lab").repetitions == 3


def test_xdist_controller_maps_node_ids_to_hosts() -> None:
    """The one place a host is found from a node id (the xdist controller): the earliest,
    longest host id in the brackets; a pair is its first host; other tests have none."""
    from pytest_azlinux.session import host_id_in

    hosts = ["vm", "vm-1", "vm-10", "a:localhost"]
    assert host_id_in("s/t.py::test_x[vm-1]", hosts) == "vm-1"
    assert host_id_in("s/t.py::test_x[vm-10]", hosts) == "vm-10"
    assert host_id_in("s/t.py::test_tcp[vm-1->vm-10]", hosts) == "vm-1"
    assert host_id_in("s/t.py::test_p[btrfs-vm-10]", hosts) == "vm-10"
    assert host_id_in("s/t.py::test_x[a:localhost]", hosts) == "a:localhost"
    assert host_id_in("s/t.py::test_unbound", hosts) is None
    assert host_id_in("s/t.py::test_x[other]", hosts) is None


def test_xdist_scheduling_groups_a_hosts_tests() -> None:
    from pytest_azlinux.xdist_scheduling import HostScheduling

    sched = HostScheduling.__new__(HostScheduling)  # only the scope split is exercised
    sched._host_ids = [f"h{i}" for i in range(8)]
    sched._batches = None
    sched.assigned_work = {"gw0": {}, "gw1": {}}  # two workers
    assert sched._split_scope("s/a.py::t[h1]") == sched._split_scope("s/b.py::u[h1]")
    assert sched._split_scope("s/a.py::t[h0]") == sched._split_scope("s/a.py::t[h1]")  # a batch
    assert len({sched._split_scope(f"s/a.py::t[h{i}]") for i in range(8)}) == 4  # 2 a worker
    assert sched._split_scope("s/a.py::test_unbound") == "s/a.py"  # by module, as loadscope


@pytest.mark.parametrize(("hosts", "workers", "sizes"), [
    (1000, 2, [250] * 4), (10, 2, [3, 3, 3, 1]), (3, 2, [1, 1, 1]), (1, 4, [1]), (5, 1, [3, 2]),
])
def test_host_batches_are_two_a_worker_in_host_order(
    hosts: int, workers: int, sizes: list[int]
) -> None:
    from pytest_azlinux.session import host_batches

    ids = [f"n{i}" for i in range(hosts)]
    batches = host_batches(ids, workers)
    assert list(batches) == ids and sorted(batches.values()) == list(batches.values())
    assert [list(batches.values()).count(b) for b in sorted(set(batches.values()))] == sizes
