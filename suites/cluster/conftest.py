"""Pod-level suites on cluster targets: fixtures ``azl_node`` and ``azl_cluster``."""

from pytest_azlinux.cluster.fixtures import azl_cluster, azl_node

__all__ = ["azl_cluster", "azl_node"]
