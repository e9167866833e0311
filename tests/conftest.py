"""Fixtures of the project's own tests: real sshd servers, the lab."""

pytest_plugins = ["tests.fixtures.sshd", "tests.fixtures.lab", "tests.fixtures.vm"]
