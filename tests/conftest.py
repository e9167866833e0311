"""Fixtures of the project's own tests: real sshd servers, the lab, VM hosts, the cluster bed."""

pytest_plugins = [
    "tests.fixtures.sshd",
    "tests.fixtures.lab",
    "tests.fixtures.vm",
    "tests.fixtures.cluster",
]
