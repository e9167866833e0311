"""``kind: ssh`` with ``ssh_config:``: an OpenSSH client config of the shape users keep, read
through paramiko's SSHConfig, to the HostSpecs the transports use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.kinds import BUILTIN_KINDS
from pytest_azlinux.targets import (
    DEFAULT_SSH_CONFIG,
    HostSpec,
    JumpHost,
    SshConfigTarget,
    SshTarget,
    TargetsFile,
    parse_targets,
)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """Key files the config names (only their existence is checked before connecting)."""
    d = tmp_path / "keys"
    d.mkdir()
    for name in ("ops", "deploy", "id_ed25519"):
        (d / name).write_text("not read here")
    return d


def config_file(tmp_path: Path, text: str, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def resolve(config: Path, hosts: list[str], **fields: object) -> dict[str, HostSpec]:
    target = SshConfigTarget(kind="ssh", ssh_config=str(config), hosts=hosts,
                             **fields)  # type: ignore[arg-type]
    resolve = BUILTIN_KINDS["ssh"].resolve_function()
    return {s.name: s for s in resolve("fleet", target, start=True).hosts}


def fleet_config(tmp_path: Path, keys: Path) -> Path:
    return config_file(tmp_path, f"""
        # A config of the shape users keep.
        Host bastion
            HostName 203.0.113.10
            User ops
            Port 2200
            IdentityFile {keys}/ops

        Host web-1 web-2 web-3
            HostName %h.internal.example.net
            User deploy
            IdentityFile {keys}/deploy
            ProxyJump bastion
            UserKnownHostsFile {tmp_path}/known_hosts_web {tmp_path}/second
            StrictHostKeyChecking accept-new

        Host web-3
            Port 2222

        Host db-primary
            HostName=10.1.0.20
            User=postgres
            ProxyJump=dba@203.0.113.11:22,bastion
            StrictHostKeyChecking yes
            ConnectTimeout 4

        Host *.example.org
            User wildcard

        Host *
            IdentityFile {keys}/id_ed25519
            ServerAliveInterval 30
        """)


def test_aliases_and_their_settings(tmp_path: Path, keys: Path) -> None:
    hosts = resolve(fleet_config(tmp_path, keys), ["web-*", "db-primary"])
    assert list(hosts) == ["web-1", "web-2", "web-3", "db-primary"]
    web1 = hosts["web-1"]
    assert (web1.address, web1.port, web1.user) == ("web-1.internal.example.net", 22, "deploy")
    assert web1.identity_file == f"{keys}/deploy"  # the first IdentityFile that applies
    assert web1.known_hosts == f"{tmp_path}/known_hosts_web"  # the first file of the list
    assert web1.host_key_policy == "accept-new"
    assert web1.jump == (JumpHost(address="203.0.113.10", port=2200, user="ops",
                                  identity_file=f"{keys}/ops"),)  # bastion looked up
    assert hosts["web-3"].port == 2222  # a later Host block adds what is unset
    db = hosts["db-primary"]
    assert (db.address, db.user, db.host_key_policy, db.connect_timeout) == (
        "10.1.0.20", "postgres", "strict", 4.0)
    assert db.identity_file == f"{keys}/id_ed25519"  # from Host *
    assert [(j.address, j.port, j.user) for j in db.jump] == [
        ("203.0.113.11", 22, "dba"), ("203.0.113.10", 2200, "ops")]


def test_match_and_negated_patterns(tmp_path: Path) -> None:
    path = config_file(tmp_path, """
        Host app-1 app-2
            HostName %h.internal
        Host app-* !app-2
            User not-two
        Match originalhost app-2
            Port 2202
        """)
    hosts = resolve(path, ["app-*"])
    assert (hosts["app-1"].address, hosts["app-1"].user, hosts["app-1"].port) == (
        "app-1.internal", "not-two", 22)
    assert (hosts["app-2"].user, hosts["app-2"].port) == (None, 2202)


def test_a_name_matched_by_a_wildcard_host_line(tmp_path: Path, keys: Path) -> None:
    spec = resolve(fleet_config(tmp_path, keys), ["vm1.example.org"])["vm1.example.org"]
    assert (spec.address, spec.user) == ("vm1.example.org", "wildcard")


def test_defaults_fill_what_the_config_leaves_unset(tmp_path: Path, keys: Path) -> None:
    hosts = resolve(fleet_config(tmp_path, keys), ["bastion", "web-1"],
                    defaults={"user": "x", "known_hosts": "~/kh", "sudo": True,
                              "host_key_policy": "accept-new"})
    bastion, web1 = hosts["bastion"], hosts["web-1"]
    assert bastion.user == "ops"  # the config wins
    assert bastion.known_hosts == str(Path("~/kh").expanduser())  # unset there: the default
    assert (bastion.host_key_policy, bastion.sudo, bastion.jump) == ("accept-new", True, ())
    assert web1.known_hosts == f"{tmp_path}/known_hosts_web"


def test_jump_host_chain_through_the_first_hops_own_proxyjump(tmp_path: Path) -> None:
    path = config_file(tmp_path, """
        Host outer
            HostName 198.51.100.1
        Host inner
            HostName 10.0.0.1
            ProxyJump outer
        Host target
            HostName 10.0.0.2
            ProxyJump inner
        Host loop-a
            ProxyJump loop-b
        Host loop-b
            ProxyJump loop-a
        """)
    spec = resolve(path, ["target"])["target"]
    assert [j.address for j in spec.jump] == ["198.51.100.1", "10.0.0.1"]
    with pytest.raises(TargetsError, match="ProxyJump loop \\(loop-a -> loop-b -> loop-a\\)"):
        resolve(path, ["loop-a"])


def test_proxycommand_ssh_w_is_a_jump(tmp_path: Path) -> None:
    path = config_file(tmp_path, """
        Host bastion
            HostName 203.0.113.10
            User ops
        Host app
            HostName 10.0.0.3
            ProxyCommand ssh -W %h:%p bastion
        """)
    (hop,) = resolve(path, ["app"])["app"].jump
    assert (hop.address, hop.port, hop.user) == ("203.0.113.10", 22, "ops")


def test_include_is_followed(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    config_file(tmp_path, """
        Host included-1
            HostName 10.0.0.11
        """, "conf.d/10-one")
    config_file(tmp_path, """
        Host included-2
            HostName 10.0.0.12
        """, "conf.d/20-two")
    path = config_file(tmp_path, f"""
        Host web
            User first
            Include {tmp_path}/conf.d/*
            Port 2022
        Include {tmp_path}/no-such-file
        """)
    hosts = resolve(path, ["included-*", "web"])
    assert {n: h.address for n, h in hosts.items()} == {
        "included-1": "10.0.0.11", "included-2": "10.0.0.12", "web": "web"}
    # after the Include, the enclosing Host block goes on (as in ssh)
    assert (hosts["web"].user, hosts["web"].port) == ("first", 2022)
    assert hosts["included-1"].port == 22


def test_strict_host_key_checking_no(tmp_path: Path) -> None:
    path = config_file(tmp_path, """
        Host lax
            HostName 10.0.0.9
            StrictHostKeyChecking no
        """)
    with pytest.raises(TargetsError, match=(
        f"^target 'fleet': {path}: host 'lax': field 'StrictHostKeyChecking': 'no' turns host "
        "key checks off, which pytest-azlinux never does: use accept-new .*, or set "
        "defaults.host_key_policy in the target$")):
        resolve(path, ["lax"])
    spec = resolve(path, ["lax"], defaults={"host_key_policy": "accept-new"})["lax"]
    assert spec.host_key_policy == "accept-new"


@pytest.mark.parametrize(
    ("body", "hosts", "message"),
    [
        ("Host a\n  Port http\n", ["a"], "host 'a': field 'Port': not a port number 1..65535"),
        ("Host a\n  Port 0\n", ["a"], "host 'a': field 'Port': not a port number"),
        ("Host a\n  ProxyJump u@h:x\n", ["a"], "host 'a': field 'ProxyJump': jump host h: not "
                                               "a port"),
        ("Host a\n  ProxyCommand nc %h %p\n", ["a"], "host 'a': field 'ProxyCommand': .* is "
                                                     "not supported"),
        ("Host a\n  UserKnownHostsFile /dev/null\n", ["a"], "field 'UserKnownHostsFile': "
                                                            "'/dev/null' keeps no host keys"),
        ("Host a\n  StrictHostKeyChecking sometimes\n", ["a"], "expected yes, accept-new"),
        ("Host a\n  IdentityFile /nonexistent/key\n", ["a"], "host 'a': field 'IdentityFile': "
                                                             "no such key file"),
        ("Host a\n  ConnectTimeout soon\n", ["a"], "field 'ConnectTimeout'"),
        ("Host a\n  HostName x\n", ["b"], "hosts: 'b' is not named by any Host line .* "
                                          "\\(aliases: a\\)"),
        ("Host a\n", ["z*"], "hosts: 'z\\*' matches no Host alias"),
        ("Host *\n  User u\n", ["any"], "'any' is not named by any Host line"),
        ("Host a b\n  HostName x\nthis-line-has-no-value\n", ["a"],
         "line 3: unparsable line: 'this-line-has-no-value'"),
        ("Host a:1\n", ["a:1"], "host 'a:1': a host name may hold only"),
    ],
)
def test_errors_name_file_host_and_field(tmp_path: Path, body: str, hosts: list[str],
                                         message: str) -> None:
    path = tmp_path / "cfg"
    path.write_text(body)
    with pytest.raises(TargetsError, match=message) as info:
        resolve(path, hosts)
    text = str(info.value)
    assert text.startswith(f"target 'fleet': {path}") and "\n" not in text


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match=f"^target 'fleet': cannot read ssh_config "
                                           f"{tmp_path}/none: No such file or directory$"):
        resolve(tmp_path / "none", ["a"])


# -- the targets file --------------------------------------------------------------------------
def test_schema(tmp_path: Path) -> None:
    targets = parse_targets(
        "targets:\n"
        "  given: {kind: ssh, ssh_config: my_config, hosts: [a]}\n"
        "  bare: {kind: ssh, ssh_config: , hosts: [a]}\n"
        "  truthy: {kind: ssh, ssh_config: true, hosts: ['web-*'], defaults: {sudo: true}}\n"
        "  plain: {kind: ssh, hosts: [{name: a, address: x}]}\n",
        "t.yaml", base_dir=tmp_path,
    )
    given, bare, yes, plain = (targets[n] for n in ("given", "bare", "truthy", "plain"))
    assert isinstance(given, SshConfigTarget) and isinstance(bare, SshConfigTarget)
    assert isinstance(yes, SshConfigTarget) and isinstance(plain, SshTarget)
    assert given.ssh_config == str(tmp_path / "my_config")  # relative to the targets file
    assert bare.ssh_config == yes.ssh_config == str(Path(DEFAULT_SSH_CONFIG).expanduser())
    assert yes.hosts == ["web-*"] and yes.defaults.sudo


def test_secrets_of_the_defaults_are_redacted(tmp_path: Path) -> None:
    targets = parse_targets(
        "targets:\n  a: {kind: ssh, ssh_config: c, hosts: [x], defaults: {password: pw1}}\n"
        "  b: {kind: ansible, inventory: i, defaults: {sudo_password: pw2}}\n", "t.yaml")
    assert sorted(TargetsFile(None, targets).secrets()) == ["pw1", "pw2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{kind: ssh, ssh_config: c, hosts: [{name: a, address: x}]}",
         "field 'hosts': .*with ssh_config, hosts are Host aliases or globs"),
        ("{kind: ssh, hosts: [web-1]}", "field 'hosts': .*set ssh_config"),
        ("{kind: ssh, ssh_config: false, hosts: [a]}", "field 'ssh_config': a path"),
        ("{kind: ssh, ssh_config: c, hosts: []}", "field 'hosts': List should have at least 1"),
        ("{kind: ssh, ssh_config: c, hosts: [a], user: u}", "field 'user': Extra inputs"),
        ("{kind: ssh, ssh_config: c, hosts: [a], defaults: {port: x}}",
         "field 'defaults.port': Input should be a valid integer"),
    ],
)
def test_schema_errors(body: str, message: str) -> None:
    with pytest.raises(TargetsError, match=f"^t.yaml: target 'a': {message}"):
        parse_targets(f"targets:\n  a: {body}\n", "t.yaml")
