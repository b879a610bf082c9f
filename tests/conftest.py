"""Fixtures shared by every suite (tests/support): the Kubernetes API emulator and real backing servers."""

pytest_plugins = [
    "tests.support.fixtures_kube",
    "tests.support.fixtures_servers",
    "tests.support.fixtures_meetings",
    "tests.support.fixtures_s3",
]
