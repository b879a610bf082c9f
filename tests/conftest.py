"""Fixtures shared by every suite: the Kubernetes API emulator (tests/support)."""

pytest_plugins = ["tests.support.fixtures_kube"]
