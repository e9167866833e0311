"""Bad inventories and ssh_configs through the real entry point: pytest stops before any test
with exit code 4 and one line naming the target, the file, and the host and field where there
is one; never a traceback.
"""

from __future__ import annotations

import pytest

INI_OK = "[web]\nweb1 ansible_host=192.0.2.1\n"
CASES: dict[str, tuple[str, str, str, list[str]]] = {
    # name: (target body, file name, file text, fragments of the one error line)
    "missing-inventory": ("{kind: ansible, inventory: nope.ini, group: web}", "other.ini", "",
                          ["target 'fleet'", "nope.ini", "cannot read inventory",
                           "No such file or directory"]),
    "unknown-group": ("{kind: ansible, inventory: hosts.ini, group: db}", "hosts.ini", INI_OK,
                      ["hosts.ini", "field 'group': unknown group 'db'", "web"]),
    "host-without-address": (
        "{kind: ansible, inventory: hosts.yml, group: web}", "hosts.yml",
        "web:\n  hosts:\n    web1:\n      ansible_host:\n",
        ["hosts.yml", "host 'web1'", "field 'ansible_host': empty"]),
    "bad-port-ini": (
        "{kind: ansible, inventory: hosts.ini}", "hosts.ini",
        "[web]\nweb1 ansible_host=192.0.2.1 ansible_port=22x\n",
        ["hosts.ini", "host 'web1'", "field 'ansible_port'", "not a port number"]),
    "bad-port-in-host-pattern": (
        "{kind: ansible, inventory: hosts.ini}", "hosts.ini", "[web]\nweb1:70000\n",
        ["hosts.ini", "line 2", "host 'web1:70000'", "not a port number"]),
    "unparsable-ini-line": (
        "{kind: ansible, inventory: hosts.ini}", "hosts.ini", "[web]\nweb1 oops\n",
        ["hosts.ini", "line 2", "expected key=value", "'oops'"]),
    "unparsable-yaml": (
        "{kind: ansible, inventory: hosts.yml}", "hosts.yml", "web:\n  hosts: [unclosed\n",
        ["hosts.yml", "invalid YAML"]),
    "pattern-matches-nothing": (
        "{kind: ansible, inventory: hosts.ini, pattern: 'web:&db'}", "hosts.ini", INI_OK,
        ["hosts.ini", "field 'pattern'", "'db' matches no group or host"]),
    "ssh-config-missing": (
        "{kind: ssh, ssh_config: nope_config, hosts: [a]}", "other", "",
        ["target 'fleet'", "cannot read ssh_config", "nope_config"]),
    "ssh-config-bad-port": (
        "{kind: ssh, ssh_config: ssh_config, hosts: [web1]}", "ssh_config",
        "Host web1\n  HostName 192.0.2.1\n  Port 0\n",
        ["ssh_config", "host 'web1'", "field 'Port'", "not a port number"]),
    "ssh-config-unknown-alias": (
        "{kind: ssh, ssh_config: ssh_config, hosts: [web2]}", "ssh_config",
        "Host web1\n  HostName 192.0.2.1\n",
        ["ssh_config", "'web2' is not named by any Host line", "aliases: web1"]),
    "ssh-config-unparsable-line": (
        "{kind: ssh, ssh_config: ssh_config, hosts: [web1]}", "ssh_config",
        "Host web1\n  HostName\n", ["ssh_config", "line 2", "unparsable line"]),
    "ssh-config-host-key-checks-off": (
        "{kind: ssh, ssh_config: ssh_config, hosts: [web1]}", "ssh_config",
        "Host web1\n  StrictHostKeyChecking no\n",
        ["host 'web1'", "field 'StrictHostKeyChecking'", "never does"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_source_is_one_line_usage_error(pytester: pytest.Pytester, case: str) -> None:
    body, name, text, fragments = CASES[case]
    (pytester.path / name).write_text(text)
    (pytester.path / "azl-targets.yaml").write_text(f"targets:\n  fleet: {body}\n")
    pytester.makepyfile(test_x="def test_one(azl_host): pass\n")
    result = pytester.runpytest_subprocess("--azl-target=fleet", "-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, out
    assert "Traceback" not in out
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, out
    line = errors[0]
    assert line.startswith("ERROR: target 'fleet': "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
