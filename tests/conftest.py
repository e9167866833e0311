"""Fixtures of the project's own tests: real sshd servers, the lab, VM hosts, the cluster bed."""

pytest_plugins = [
    "tests.fixtures.sshd",
    "tests.fixtures.lab",
    "tests.fixtures.vm",
    "tests.fixtures.cluster",
]

import pytest  # noqa: E402

# Fixtures that need root (sshd users, namespaces, loop devices, VMs, the cluster bed).
ROOT_FIXTURES = {"ssh_users", "sshd_factory", "sshd", "provisioned_users", "lab", "lab_hosts",
                 "vm_lab", "vm_hosts", "cluster_bed"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "root: needs root (real sshd users, namespaces, VMs, the cluster bed); "
        "without root run: pytest tests/unit tests/plugin -m 'not root'"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if "integration" in item.path.parts or uses & ROOT_FIXTURES:
            item.add_marker(pytest.mark.root)
