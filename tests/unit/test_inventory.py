"""Ansible inventories read without Ansible: INI and YAML files of the same shape, host
ranges, groups and children, variable precedence, group_vars/host_vars, host patterns, and
the connection settings a ``kind: ansible`` target takes from them."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.inventory import Inventory, load_inventory, select_group, select_pattern
from pytest_azlinux.inventory.hostnames import expand, split_port
from pytest_azlinux.inventory.ini import parse_ini
from pytest_azlinux.kinds.ansible import host_spec
from pytest_azlinux.kinds.ansible import resolve as resolve_ansible
from pytest_azlinux.targets import AnsibleTarget, HostSpec, JumpHost, parse_targets

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
HOSTS = [
    "localhost", "bastion.example.net", "web01.example.net", "web02.example.net",
    "web03.example.net", "web-canary.example.net", "db-a.example.net", "db-b.example.net",
]


def ansible_target(inventory: Path, **fields: object) -> AnsibleTarget:
    target = AnsibleTarget(kind="ansible", inventory=str(inventory), **fields)  # type: ignore[arg-type]
    return target


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with the key file the data inventories name (~/.ssh/deploy_ed25519)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "deploy_ed25519").write_text("not read")
    monkeypatch.setenv("HOME", str(home))
    return home


def specs(inventory: Path, **fields: object) -> dict[str, HostSpec]:
    resolved = resolve_ansible("fleet", ansible_target(inventory, **fields), start=True)
    return {s.name: s for s in resolved.hosts}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# -- the two formats -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hosts.ini", "hosts.yml"])
def test_hosts_and_groups(name: str) -> None:
    inv = load_inventory(DATA / name, "t")
    assert list(inv.host_vars) == HOSTS
    assert inv.hosts_of("all") == HOSTS
    assert inv.hosts_of("prod") == HOSTS[2:]  # web and db through children
    assert inv.hosts_of("web") == HOSTS[2:6]
    assert inv.hosts_of("ungrouped") == ["localhost"]
    assert set(inv.groups_of("db-a.example.net")) == {"db", "prod", "all"}


def test_ini_and_yaml_give_the_same_hosts() -> None:
    ini, yml = specs(DATA / "hosts.ini"), specs(DATA / "hosts.yml")
    assert list(ini) == list(yml) == HOSTS
    assert ini == yml


def test_connection_settings_from_the_inventory(home: Path) -> None:
    hosts = specs(DATA / "hosts.ini")
    web1 = hosts["web01.example.net"]
    assert (web1.address, web1.port, web1.user) == ("web01.example.net", 22, "deploy")
    assert web1.identity_file == f"{home}/.ssh/deploy_ed25519"  # ~ expanded by the merge
    assert web1.jump == (JumpHost(address="203.0.113.10", port=2200, user="ops"),)
    assert web1.connect_timeout == 15.0  # group_vars/prod/connection.yml
    assert not web1.sudo
    assert hosts["web02.example.net"].port == 2202  # host_vars/ beats the group
    canary = hosts["web-canary.example.net"]
    assert (canary.address, canary.port) == ("10.1.0.99", 2222)  # host:port in the pattern
    bastion = hosts["bastion.example.net"]
    assert (bastion.address, bastion.port, bastion.user, bastion.jump) == (
        "203.0.113.10", 2200, "ops", ())
    assert bastion.connect_timeout == 10.0  # not in prod: the default
    db = hosts["db-a.example.net"]
    assert db.sudo and db.sudo_password is not None
    assert db.sudo_password.get_secret_value() == "s3cret pass"
    assert "s3cret pass" in db.secrets()
    assert hosts["localhost"].access == "local"


def test_variable_precedence() -> None:
    """Deeper groups beat their parents, all is lowest; group_vars/ beats the file's group
    variables; the host's own variables beat every group."""
    inv = load_inventory(DATA / "hosts.ini", "t")
    web1 = inv.variables("web01.example.net")
    assert web1["ansible_user"] == "deploy"  # prod beats all
    assert web1["ansible_python_interpreter"] == "/usr/bin/python3"  # from all
    assert web1["http_port"] == 8080  # a literal in INI, as Ansible reads it
    assert inv.variables("bastion.example.net")["ansible_user"] == "ops"  # host beats all


def test_group_priority_and_name_order(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.ini", """
        [a]
        h1
        [b]
        h1
        [a:vars]
        x=from-a
        [b:vars]
        x=from-b
        """)
    assert load_inventory(path, "t").variables("h1")["x"] == "from-b"  # same depth: by name
    path.write_text(path.read_text() + "ansible_group_priority=0\n")  # b now ranks first
    assert load_inventory(path, "t").variables("h1")["x"] == "from-a"


def test_vault_encrypted_group_vars_file_is_left_out() -> None:
    inv = load_inventory(DATA / "hosts.yml", "t")
    assert inv.group_vars_files["prod"] == {"ansible_timeout": 15}


def test_yaml_vault_and_unsafe_values(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.yml", """
        all:
          hosts:
            h1:
              ansible_user: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                3961
            h2:
              ansible_user: !unsafe "{{ not a template }}"
            h3:
              ansible_user: "{{ lookup('env', 'USER') }}"
        """)
    inv = load_inventory(path, "t")
    target = ansible_target(path)
    with pytest.raises(TargetsError, match=r"host 'h1': field 'ansible_user': encrypted with "
                                           "ansible-vault"):
        host_spec(inv, "h1", "fleet", target, "t")
    assert host_spec(inv, "h2", "fleet", target, "t").user == "{{ not a template }}"
    with pytest.raises(TargetsError, match=r"host 'h3': field 'ansible_user': .* Jinja2"):
        host_spec(inv, "h3", "fleet", target, "t")


# -- host names ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("web[1:3].x", ["web1.x", "web2.x", "web3.x"]),
        ("n[0:6:3]", ["n0", "n3", "n6"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("r[1:2]c[a:b]", ["r1ca", "r1cb", "r2ca", "r2cb"]),
        ("plain.example.net", ["plain.example.net"]),
    ],
)
def test_host_ranges(pattern: str, names: list[str]) -> None:
    assert expand(pattern, "t") == names


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("web[3:1]", "start is after end"), ("web[01:3]", "same width"),
     ("web[1:3:0]", "step"), ("web[a:3]", "numbers or single letters"), ("web[5]", "start:end")],
)
def test_bad_host_ranges(pattern: str, message: str) -> None:
    with pytest.raises(TargetsError, match=message):
        expand(pattern, "t")


def test_host_port() -> None:
    assert split_port("h.example.net:2222", "t") == ("h.example.net", 2222)
    assert split_port("web[1:3]", "t") == ("web[1:3]", None)
    assert split_port("web[1:3]:22", "t") == ("web[1:3]", 22)
    with pytest.raises(TargetsError, match=r"host 'h:99999': not a port number"):
        split_port("h:99999", "t")


# -- patterns ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web", HOSTS[2:6]),
        ("web:db", HOSTS[2:]),
        ("web,db", HOSTS[2:]),
        ("prod:!db", HOSTS[2:6]),
        ("prod:&db", HOSTS[6:]),
        ("all:!prod", HOSTS[:2]),
        ("!prod", HOSTS[:2]),
        ("web0*", HOSTS[2:5]),
        ("db*", HOSTS[6:]),  # a glob matches groups (db) and hosts
        ("~web0[12]", HOSTS[2:4]),
        ("bastion.example.net:localhost", HOSTS[1::-1]),
        ("*", HOSTS),
    ],
)
def test_patterns(pattern: str, expected: list[str]) -> None:
    assert select_pattern(load_inventory(DATA / "hosts.ini", "t"), pattern, "t") == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("webz", "'webz' matches no group or host"), ("web:!nope", "'nope' matches no group"),
     ("web:&bastions", "selects no host"), ("web[0]", "subscripts"), ("~(", "bad regex")],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(TargetsError, match=message):
        select_pattern(load_inventory(DATA / "hosts.ini", "t"), pattern, "t")


def test_group_selection() -> None:
    inv = load_inventory(DATA / "hosts.yml", "t")
    assert select_group(inv, "db", "t") == HOSTS[6:]
    with pytest.raises(TargetsError, match=r"field 'group': unknown group 'dbs' \(groups: all, "
                                           "bastions, db, prod, ungrouped, web\\)"):
        select_group(inv, "dbs", "t")


# -- INI details -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[web\nh1\n", "line 1: unparsable section header"),
        ("[web:hosts]\nh1\n[web:stuff]\n", "line 3: section \\[web:stuff\\] has an unknown type"),
        ("[web]\nh1 ansible_user\n", "line 2: expected key=value after the host name, got "
                                     "'ansible_user'"),
        ("[web]\nh1 ansible_user='x\n", "line 2: unparsable line"),
        ("[web:vars]\nx=1\n", "line 1: \\[web:vars\\] for a group that is defined nowhere"),
        ("[web:vars]\njust-a-word\n[web]\nh1\n", "line 2: expected key=value"),
        ("[a:children]\nb\n[b:children]\na\n", "group 'a' as a child of 'b' makes a loop"),
    ],
)
def test_ini_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(TargetsError, match=f"^inv.ini: {message}" if "loop" not in message
                       else message):
        parse_ini(text, Inventory("inv.ini"))


def test_ini_values_are_read_as_ansible_reads_them(tmp_path: Path) -> None:
    path = write(tmp_path, "inv", """
        h1 a=1 b='two words' c=True d=yes e="['x', 'y']"
        [g:vars]
        f='quoted'
        g = spaced value
        [g]
        h1
        """)
    variables = load_inventory(path, "t").variables("h1")
    assert {k: variables[k] for k in "abcdefg"} == {
        "a": 1, "b": "two words", "c": True, "d": "yes", "e": ["x", "y"], "f": "quoted",
        "g": "spaced value"}


# -- YAML details ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all:\n  hosts: [a, b]\n", "group 'all': field 'hosts': expected a mapping"),
        ("all:\n  host:\n    a:\n", "group 'all': unknown key 'host'"),
        ("web:\n  hosts:\n    a: just-text\n", "group 'web': host 'a': expected a mapping"),
        ("- a\n- b\n", "the top level must map group names"),
        ("all:\n  hosts:\n    a:\n    a:\n", "line 4: invalid YAML: duplicate key 'a'"),
        ("all:\n  children: [web]\n", "field 'children': expected a mapping"),
    ],
)
def test_yaml_errors_name_file_and_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    with pytest.raises(TargetsError, match=message) as info:
        load_inventory(path, "target 'x'")
    assert str(info.value).startswith(f"target 'x': {path}")


# -- connection settings -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("h1 ansible_port=http", "host 'h1': field 'ansible_port': not a port number"),
        ("h1 ansible_port=70000", "host 'h1': field 'ansible_port': not a port number"),
        ('h1 ansible_host=""', "host 'h1': field 'ansible_host': empty"),
        ("h1 ansible_become=maybe", "host 'h1': field 'ansible_become': expected a boolean"),
        ("h1 ansible_become=yes ansible_become_method=su",
         "field 'ansible_become_method': 'su' is not supported"),
        ("h1 ansible_connection=winrm", "field 'ansible_connection': 'winrm' is not supported"),
        ("h1 ansible_ssh_common_args='-o StrictHostKeyChecking=no'",
         "field 'ansible_ssh_common_args': StrictHostKeyChecking: 'no' turns host key checks off"),
        ("h1 ansible_host_key_checking=false",
         "field 'ansible_host_key_checking': false turns host key checks off"),
        ("h1 ansible_ssh_common_args='-o ProxyJump=a@b@c'",
         "field 'ansible_ssh_common_args': ProxyJump: not a jump host"),
        ("h1 ansible_ssh_common_args='-J b:99999'", "jump host b: not a port number"),
        ("h1 ansible_ssh_extra_args='-o ProxyCommand=\"nc %h %p\"'",
         "field 'ansible_ssh_extra_args': ProxyCommand: 'nc %h %p' is not supported"),
        ("h1 ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null'",
         "UserKnownHostsFile: '/dev/null' keeps no host keys"),
        ("h1 ansible_ssh_common_args='bastion'", "not an ssh option: 'bastion'"),
        ("h1 ansible_timeout=-1", "field 'ansible_timeout': expected seconds > 0"),
        ("h1 ansible_ssh_private_key_file=[1]", "field 'ansible_ssh_private_key_file': expected "
                                                "text"),
        ("bad_name! ansible_host=x", "host 'bad_name!': a host name may hold only"),
        ("h1 ansible_ssh_private_key_file=~/.ssh/absent",
         "host 'h1': field 'ansible_ssh_private_key_file': no such key file: ~/.ssh/absent"),
        ("h1 ansible_ssh_common_args='-i /nonexistent/k'",
         "field 'ansible_ssh_common_args': -i: no such key file: /nonexistent/k"),
    ],
)
def test_bad_connection_settings(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "hosts.ini", line + "\n")
    with pytest.raises(TargetsError, match=message) as info:
        specs(path)
    assert str(info.value).startswith(f"target 'fleet': {path}: host ")


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-o ProxyJump=ops@b1:2200", [("b1", 2200, "ops")]),
        ("-o 'ProxyJump ops@b1'", [("b1", 22, "ops")]),
        ("-J b1,u@b2:2", [("b1", 22, None), ("b2", 2, "u")]),
        ("-qJ b1", [("b1", 22, None)]),
        ("-oProxyJump=ssh://u@b1:7", [("b1", 7, "u")]),
        ("-C -o ControlMaster=auto -o ControlPersist=60s", []),
        ("-o ProxyJump=none", []),
        ("-o ProxyCommand='ssh -W %h:%p -q -p 2201 ops@b1'", [("b1", 2201, "ops")]),
        ("-o ProxyCommand='ssh -J a@b0 -W [%h]:%p b1'", [("b0", 22, "a"), ("b1", 22, None)]),
    ],
)
def test_jump_hosts_from_ssh_args(tmp_path: Path, args: str, jump: list[tuple[object, ...]]
                                  ) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(f'h1 ansible_ssh_common_args="{args}"\n')
    spec = specs(path)["h1"]
    assert [(j.address, j.port, j.user) for j in spec.jump] == jump


def test_ssh_args_other_options(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("not read")
    path = write(tmp_path, "hosts.ini", f"""
        h1 ansible_ssh_common_args='-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={tmp_path}/kh -p 2201 -l u1 -i {key}'
        h2 ansible_port=2 ansible_user=u2 ansible_ssh_common_args='-p 2201 -l u1 -o StrictHostKeyChecking=yes'
        """)  # noqa: E501
    h1, h2 = specs(path, defaults={"host_key_policy": "accept-new"}).values()
    assert (h1.port, h1.user, h1.identity_file) == (2201, "u1", str(key))
    assert (h1.host_key_policy, h1.known_hosts) == ("accept-new", f"{tmp_path}/kh")
    assert (h2.port, h2.user, h2.host_key_policy) == (2, "u2", "strict")  # variables win


def test_host_key_checking_off_takes_the_targets_policy(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.ini", """
        h1 ansible_host_key_checking=False
        h2 ansible_ssh_common_args='-o StrictHostKeyChecking=no'
        """)
    hosts = specs(path, defaults={"host_key_policy": "accept-new"})
    assert {h.host_key_policy for h in hosts.values()} == {"accept-new"}


def test_defaults_fill_what_the_inventory_leaves_unset(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.ini", "h1 ansible_user=inv\nh2\n")
    hosts = specs(path, defaults={"user": "dflt", "port": 2022, "sudo": True})
    assert (hosts["h1"].user, hosts["h1"].port, hosts["h1"].sudo) == ("inv", 2022, True)
    assert hosts["h2"].user == "dflt"


# -- the targets file --------------------------------------------------------------------------
def test_targets_file_schema(tmp_path: Path) -> None:
    shutil.copy(DATA / "hosts.ini", tmp_path / "hosts.ini")
    targets = parse_targets(
        "targets:\n"
        "  web: {kind: ansible, inventory: hosts.ini, group: web}\n"
        "  rest: {kind: ansible, inventory: /abs/inv.yml, pattern: 'all:!web'}\n"
        "  everything: {kind: ansible, inventory: ~/inv.yml}\n",
        "targets.yaml", base_dir=tmp_path,
    )
    web, rest, everything = targets["web"], targets["rest"], targets["everything"]
    assert isinstance(web, AnsibleTarget) and isinstance(rest, AnsibleTarget)
    assert isinstance(everything, AnsibleTarget)
    assert web.inventory == str(tmp_path / "hosts.ini")  # relative to the targets file
    assert rest.inventory == "/abs/inv.yml" and rest.selection() == "all:!web"
    assert everything.inventory == str(Path("~/inv.yml").expanduser())
    assert everything.selection() == "all"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{kind: ansible}", "field 'inventory': Field required"),
        ("{kind: ansible, inventory: x, group: a, pattern: b}", "give group or pattern, not both"),
        ("{kind: ansible, inventory: x, hosts: [a]}", "field 'hosts': Extra inputs"),
        ("{kind: ansible, inventory: x, defaults: {port: 0}}", "field 'defaults.port'"),
        ("{kind: ansibel, inventory: x}", "unknown kind 'ansibel' \\(expected one of local, ssh, "
                                          "ansible, lab, cluster, image, recorded\\)"),
        ("{kind: null, inventory: x}", "field 'kind': unknown kind None"),
    ],
)
def test_targets_file_errors(body: str, message: str) -> None:
    with pytest.raises(TargetsError, match=f"^t.yaml: target 'a': .*{message}"):
        parse_targets(f"targets:\n  a: {body}\n", "t.yaml")


def test_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match=f"^target 'fleet': {tmp_path}/nope.ini: cannot read "
                                           "inventory: No such file or directory$"):
        specs(tmp_path / "nope.ini")
