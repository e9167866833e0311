"""Targets from where users keep hosts, end to end against the lab: an OpenSSH client config
and Ansible inventories (INI and YAML) naming the lab's hosts, with groups and children and a
jump host (one lab host as the ProxyJump of another), run through the plugin.

Each lab host is a real sshd in its own network namespace. Which way a connection came is
read on the host itself: ``$SSH_CONNECTION`` names the client address, which is the jump
host's lab address when the connection went through it, and this machine's otherwise.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.hostfs import USER

# Each test writes what it saw on its host: target, host, hostname, client address.
INNER = textwrap.dedent(
    """
    import json

    def test_reach(azl_host):
        client = azl_host.check_output("echo $SSH_CONNECTION").split()[0]
        seen = {"target": azl_host.spec.target, "host": azl_host.name,
                "hostname": azl_host.check_output("hostname").strip(), "client": client}
        with open("seen.jsonl", "a") as fh:
            fh.write(json.dumps(seen) + "\\n")
    """
)


def write_sources(lab: Lab, directory: Path) -> dict[str, Any]:
    """An ssh_config, an INI and a YAML inventory for the lab's hosts, and a targets file
    (beside them, naming them by relative paths) with one target per way of selecting."""
    (first, second, third) = lab.hosts[:3]
    key, known = lab.identity_file, lab.known_hosts
    fresh_known = directory / "learned_known_hosts"  # accept-new writes here
    (directory / "ssh_config").write_text(textwrap.dedent(f"""
        # The lab's hosts as a user would keep them.
        Host {first.name} {second.name} {third.name}
            User {USER}
            IdentityFile {key}
            UserKnownHostsFile {known}
            StrictHostKeyChecking yes
        Host {first.name}
            HostName {first.address}
        Host {second.name}
            HostName {second.address}
        Host {third.name}
            HostName {third.address}
        # the second host, reached through the first
        Host via-first-{second.name}
            HostName {second.address}
            ProxyJump {first.name}
        # the third, learning its host key on first contact
        Host learn-{third.name}
            HostName {third.address}
            UserKnownHostsFile {fresh_known}
            StrictHostKeyChecking accept-new
        Host *
            User {USER}
            IdentityFile {key}
            UserKnownHostsFile {known}
    """))
    jump = f"{USER}@{first.address}:22"
    # A host's ansible_ssh_common_args replaces its group's (variables are not merged), so the
    # jumped host repeats the known-hosts option.
    jumped_args = f"-o UserKnownHostsFile={known} -o ProxyJump={jump}"
    (directory / "lab.ini").write_text(textwrap.dedent(f"""
        [direct]
        {first.name} ansible_host={first.address}
        {third.name} ansible_host={third.address}

        [jumped]
        {second.name} ansible_host={second.address} ansible_ssh_common_args='{jumped_args}'

        [lab:children]
        direct
        jumped

        [lab:vars]
        ansible_user={USER}
        ansible_ssh_private_key_file={key}
        ansible_ssh_common_args='-o UserKnownHostsFile={known} -o ControlPersist=60s'
    """))
    inventory = {"all": {"children": {"lab": {
        "vars": {"ansible_user": USER, "ansible_ssh_private_key_file": str(key),
                 "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}"},
        "children": {
            "direct": {"hosts": {first.name: {"ansible_host": first.address},
                                 third.name: {"ansible_host": third.address}}},
            "jumped": {"hosts": {second.name: {
                "ansible_host": second.address,
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -J {jump}"}}},
        },
    }}}}
    (directory / "lab.yml").write_text(yaml.safe_dump(inventory))
    targets = {
        "cfg": {"kind": "ssh", "ssh_config": "ssh_config", "hosts": [f"{lab.name}-*"]},
        "cfg-jump": {"kind": "ssh", "ssh_config": "ssh_config",
                     "hosts": ["via-first-*", f"learn-{third.name}"]},
        "ini-children": {"kind": "ansible", "inventory": "lab.ini", "group": "lab"},
        "ini-group": {"kind": "ansible", "inventory": "lab.ini", "group": "jumped"},
        "yaml-pattern": {"kind": "ansible", "inventory": "lab.yml", "pattern": "lab:!direct"},
        "yaml-all": {"kind": "ansible", "inventory": "lab.yml"},
    }
    (directory / "azl-targets.yaml").write_text(yaml.safe_dump({"targets": targets}))
    return {"first": first, "second": second, "third": third, "fresh_known": fresh_known}


@pytest.fixture(scope="module")
def lab_names(lab: Lab) -> list[str]:
    names = [h.name for h in lab.hosts[:3]]
    assert all(n.startswith(f"{lab.name}-") for n in names), names  # the glob "cfg" relies on
    return names


def test_targets_from_ssh_config_and_inventories(
    pytester: pytest.Pytester, lab: Lab, lab_names: list[str]
) -> None:
    hosts = write_sources(lab, pytester.path)
    first, second, third = hosts["first"], hosts["second"], hosts["third"]
    pytester.makepyfile(test_inventory_lab=INNER)
    targets = "cfg,cfg-jump,ini-children,ini-group,yaml-pattern,yaml-all"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-targets-file", str(pytester.path / "azl-targets.yaml"),
        "--azl-target", targets, "--azl-junit-dir", str(pytester.path / "reports"),
        timeout=600,
    )
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, out
    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    by = {(s["target"], s["host"]): s for s in seen}
    assert sorted(by) == sorted([
        *(("cfg", n) for n in lab_names),
        ("cfg-jump", f"via-first-{second.name}"), ("cfg-jump", f"learn-{third.name}"),
        *(("ini-children", n) for n in (first.name, third.name, second.name)),
        ("ini-group", second.name), ("yaml-pattern", second.name),
        *(("yaml-all", n) for n in (first.name, third.name, second.name)),
    ])
    # every connection reached the host it names
    for (_, host), s in by.items():
        assert s["hostname"] == host.removeprefix("via-first-").removeprefix("learn-"), s
    # through the jump host: the second host saw the first as its client
    jumped = [("cfg-jump", f"via-first-{second.name}"), ("ini-children", second.name),
              ("ini-group", second.name), ("yaml-pattern", second.name),
              ("yaml-all", second.name)]
    for key in jumped:
        assert by[key]["client"] == first.address, (key, by[key])
    # directly: this machine's address, the same for every direct connection
    direct = {s["client"] for k, s in by.items() if k not in jumped}
    assert len(direct) == 1 and first.address not in direct, by
    # accept-new learned the third host's key, and it is the key the lab pinned
    learned = hosts["fresh_known"].read_text().split()
    pinned = next(line.split() for line in lab.known_hosts.read_text().splitlines()
                  if line.startswith(f"{third.address} "))
    assert learned == pinned


def test_list_targets_shows_the_new_kinds(pytester: pytest.Pytester, lab: Lab) -> None:
    write_sources(lab, pytester.path)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-targets-file", str(pytester.path / "azl-targets.yaml"),
        "--azl-list-targets",
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.re_match_lines([r"\s+cfg\s+ssh\s+" + lab.name + r"-\*",
                                  r"\s+ini-children\s+ansible\s*"])
