"""The targets file: defaults merge, jump parsing, env expansion, secrets, sharding."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.session import HostParam, SelectedTarget, parse_shard, shard_hosts
from pytest_azlinux.targets import (
    HostSpec,
    SshTarget,
    load_targets,
    parse_targets,
    split_names,
    ssh_host_specs,
)

FLEET = """
targets:
  fleet:
    kind: ssh
    defaults:
      user: azureuser
      identity_file: ~/.ssh/id_ed25519
      known_hosts: /etc/azl/known_hosts
      jump: [ops@bastion.example.net:2200, bastion2.example.net]
      sudo: true
      sudo_password: ${AZL_SUDO}
    hosts:
      - name: vm-a
        address: 10.1.0.4
      - name: vm-b
        address: 10.1.0.5
        port: 2222
        user: admin
        sudo: false
        host_key_policy: accept-new
        password: ${AZL_PW_B:-fallback-pw}
        jump: []
      - name: vm-c
        address: 10.1.0.6
        jump: {address: 10.9.9.9, user: hop, port: 22022}
    suites:
      network: {min_gbps: 5}
"""
ENV = {"AZL_SUDO": "sudo-secret-1"}


def fleet_specs(env: dict[str, str] = ENV) -> dict[str, HostSpec]:
    target = parse_targets(FLEET, "t.yaml", env)["fleet"]
    assert isinstance(target, SshTarget)
    return {s.name: s for s in ssh_host_specs(target, "fleet")}


def test_defaults_merge_under_host_settings() -> None:
    specs = fleet_specs()
    a, b = specs["vm-a"], specs["vm-b"]
    assert (a.user, a.port, a.sudo, a.host_key_policy) == ("azureuser", 22, True, "strict")
    assert (b.user, b.port, b.sudo, b.host_key_policy) == ("admin", 2222, False, "accept-new")
    assert a.identity_file == str(Path.home() / ".ssh" / "id_ed25519")  # ~ expanded
    assert a.known_hosts == b.known_hosts == "/etc/azl/known_hosts"
    assert a.target == "fleet" and a.access == "ssh"


def test_jump_parsing_strings_mappings_and_override() -> None:
    specs = fleet_specs()
    hops = specs["vm-a"].jump
    assert [(j.user, j.address, j.port) for j in hops] == [
        ("ops", "bastion.example.net", 2200), (None, "bastion2.example.net", 22)
    ]
    assert specs["vm-b"].jump == ()  # an empty list switches the defaults' jump off
    assert [(j.user, j.address, j.port) for j in specs["vm-c"].jump] == [("hop", "10.9.9.9", 22022)]


def test_env_expansion_with_default() -> None:
    specs = fleet_specs()
    assert specs["vm-a"].sudo_password is not None
    assert specs["vm-a"].sudo_password.get_secret_value() == "sudo-secret-1"
    assert specs["vm-b"].password is not None
    assert specs["vm-b"].password.get_secret_value() == "fallback-pw"
    specs = fleet_specs({**ENV, "AZL_PW_B": "from-env"})
    assert specs["vm-b"].password is not None
    assert specs["vm-b"].password.get_secret_value() == "from-env"


def test_missing_env_var_names_file_target_and_field() -> None:
    with pytest.raises(TargetsError) as info:
        parse_targets(FLEET, "t.yaml", {})
    message = str(info.value)
    assert message.startswith("t.yaml: target 'fleet'")
    assert "defaults.sudo_password" in message and "AZL_SUDO is not set" in message


def test_secrets_never_print() -> None:
    specs = fleet_specs()
    for spec in specs.values():
        assert "sudo-secret-1" not in repr(spec) and "fallback-pw" not in repr(spec)
        assert "sudo-secret-1" not in str(spec)
    target = parse_targets(FLEET, "t.yaml", ENV)["fleet"]
    assert "sudo-secret-1" not in repr(target) and "sudo-secret-1" not in str(target.model_dump())
    assert sorted(specs["vm-b"].secrets()) == ["fallback-pw", "sudo-secret-1"]


def test_targets_file_secrets_cover_every_host(tmp_path: Path) -> None:
    path = tmp_path / "azl-targets.yaml"
    path.write_text(FLEET)
    loaded = load_targets(path, ENV)
    assert {"sudo-secret-1", "fallback-pw"} <= set(loaded.secrets())
    assert {"local", "lab", "fleet"} <= set(loaded.targets)  # built-ins stay available
    assert loaded.get("fleet").suites["network"] == {"min_gbps": 5}


def test_split_names() -> None:
    assert split_names(["a,b", " c ", "a", ""]) == ["a", "b", "c"]


# -- sharding ----------------------------------------------------------------------------------
def _params(n: int, targets: int = 2) -> list[HostParam]:
    out = []
    for t in range(targets):
        target = SelectedTarget(f"t{t}", parse_targets(
            "targets: {x: {kind: local}}", "s", {})["x"], ())
        for i in range(n):
            spec = HostSpec(name=f"h{i:02d}", target=target.name, access="ssh")
            out.append(HostParam(f"{target.name}:{spec.name}", target, spec))
    return out


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_each_host_exactly_once(count: int) -> None:
    params = _params(10)
    seen: list[str] = []
    for index in range(1, count + 1):
        seen.extend(p.id for p in shard_hosts(params, (index, count)))
    assert sorted(seen) == sorted(p.id for p in params)
    sizes = [len(shard_hosts(params, (i, count))) for i in range(1, count + 1)]
    assert max(sizes) - min(sizes) <= 1  # balanced


def test_shards_are_deterministic_and_stable_under_reordering() -> None:
    params = _params(9)
    shuffled = params[:]
    random.Random(7).shuffle(shuffled)
    for index in (1, 2, 3):
        a = {p.id for p in shard_hosts(params, (index, 3))}
        b = {p.id for p in shard_hosts(shuffled, (index, 3))}
        assert a == b
    assert shard_hosts(params, None) == params


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1-3", "a/b", "1/0"])
def test_bad_shard_spec(bad: str) -> None:
    with pytest.raises(TargetsError, match="--azl-shard"):
        parse_shard(bad)


def test_shard_spec() -> None:
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard(None) is None
