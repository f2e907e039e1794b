"""elasticmq.conf must declare exactly the topology of idp_common.messaging.topology."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from pyhocon import ConfigFactory, ConfigTree

from idp_common.messaging import topology

from ._settings_env import REPO_ROOT

CONF = REPO_ROOT / "elasticmq.conf"
DEV_OVERLAY_CONF = REPO_ROOT / "deploy" / "kustomize" / "overlays" / "dev" / "elasticmq.conf"

# `include classpath(...)` refers to ElasticMQ's own defaults inside its jar: pyhocon cannot
# resolve it, and nothing the test checks comes from it.
_INCLUDE_CLASSPATH = re.compile(r"^\s*include\s+classpath\(.*\)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def conf() -> ConfigTree:
    text = CONF.read_text(encoding="utf-8")
    assert _INCLUDE_CLASSPATH.search(text), "elasticmq.conf must include ElasticMQ defaults"
    return ConfigFactory.parse_string(_INCLUDE_CLASSPATH.sub("", text))


@pytest.fixture(scope="module")
def queues(conf: ConfigTree) -> ConfigTree:
    tree = conf.get_config("queues")
    assert isinstance(tree, ConfigTree)
    return tree


def _queue(queues: ConfigTree, name: str) -> ConfigTree:
    queue = queues[name]  # by key, not by path: queue names are not HOCON paths
    assert isinstance(queue, ConfigTree), f"{name} must be an object"
    return queue


def _seconds(value: object) -> int:
    """A HOCON duration as parsed by pyhocon (relativedelta or timedelta) in seconds."""
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds())
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # a bare number is milliseconds in HOCON; we never write one
    # dateutil's relativedelta: only fixed-length units may appear in a timeout.
    units = ("years", "months", "days", "hours", "minutes", "seconds")
    parts = {unit: getattr(value, unit) for unit in units}
    assert parts["years"] == 0, f"not a fixed duration: {value!r}"
    assert parts["months"] == 0, f"not a fixed duration: {value!r}"
    return int(
        parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]
    )


def test_declares_exactly_the_topology_queues(queues: ConfigTree) -> None:
    expected = {spec.name for spec in topology.QUEUES} | {spec.dlq_name for spec in topology.QUEUES}
    declared = set(queues.keys())
    assert declared - expected == set(), "queues in elasticmq.conf but not in the topology"
    assert expected - declared == set(), "topology queues missing from elasticmq.conf"


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda spec: spec.name)
def test_main_queue_matches_its_spec(queues: ConfigTree, spec: topology.QueueSpec) -> None:
    queue = _queue(queues, spec.name)
    assert _seconds(queue["defaultVisibilityTimeout"]) == spec.visibility_timeout_seconds
    assert _seconds(queue["receiveMessageWait"]) == topology.MAX_LONG_POLL_SECONDS
    dead_letters = queue["deadLettersQueue"]
    assert dead_letters["name"] == spec.dlq_name
    assert dead_letters["maxReceiveCount"] == topology.MAX_RECEIVE_COUNT
    assert topology.MAX_RECEIVE_COUNT > 1, "a single receive must never dead-letter a message"


def test_dead_letter_queues_are_plain_queues(queues: ConfigTree) -> None:
    for spec in topology.QUEUES:
        dlq = _queue(queues, spec.dlq_name)
        assert "deadLettersQueue" not in dlq, f"{spec.dlq_name} must not redrive further"
        assert not dlq.get("fifo", False)


def test_only_topology_queues_redrive(queues: ConfigTree) -> None:
    main_names = {spec.name for spec in topology.QUEUES}
    redriving = {name for name in queues if "deadLettersQueue" in _queue(queues, name)}
    assert redriving == main_names


def test_server_settings(conf: ConfigTree) -> None:
    assert conf.get_string("node-address.host") == "*"
    assert conf.get_int("node-address.port") == 9324
    assert conf.get_bool("rest-sqs.enabled") is True
    assert conf.get_int("rest-sqs.bind-port") == 9324
    assert conf.get_string("rest-sqs.bind-hostname") == "0.0.0.0"
    assert conf.get_string("rest-sqs.sqs-limits") == "strict"
    assert conf.get_string("aws.region") == topology.LOCAL_REGION
    assert conf.get_string("aws.accountId") == topology.LOCAL_ACCOUNT_ID


def test_header_points_at_the_topology_module() -> None:
    header = CONF.read_text(encoding="utf-8").split("include", 1)[0]
    assert "idp_common.messaging.topology" in header


def test_dev_overlay_copy_is_identical() -> None:
    assert DEV_OVERLAY_CONF.read_bytes() == CONF.read_bytes(), (
        f"copy {CONF.name} to {DEV_OVERLAY_CONF.relative_to(REPO_ROOT)}"
    )
