"""Topics are created or verified the same way by every service (meterwatch.topics), never auto-created."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterwatch.cli.devstack import render_kafka_config
from meterwatch.settings import Settings
from meterwatch.topics import (
    TopicMismatchError,
    TopicSpec,
    create_topics,
    describe_topics,
    ensure_topics,
)

pytestmark = pytest.mark.integration


def test_the_local_broker_never_auto_creates_topics(tmp_path: Path) -> None:
    conf = dict(
        line.split("=", 1)
        for line in render_kafka_config(Settings(data_dir=tmp_path)).splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert conf["auto.create.topics.enable"] == "false"


def _renamed(s: Settings, field: str) -> Settings:
    """``s`` with a fresh (not yet existing) name for one topic; the fixture's cleanup covers it."""
    return s.model_copy(update={field: getattr(s, field) + "-fresh"})


async def test_a_topic_with_the_wrong_partition_count_is_a_clear_error(mw_settings: Settings) -> None:
    s = _renamed(mw_settings, "topic_alerts")
    # `alerts` as a client's auto-creation would leave it: one partition
    await create_topics(s, [TopicSpec(name=s.topic_alerts, partitions=1)])
    with pytest.raises(TopicMismatchError) as err:
        await ensure_topics(s)
    msg = str(err.value)
    assert f"'{s.topic_alerts}' has 1 partition(s)" in msg
    assert f"expects {s.alerts_partitions} (MW_ALERTS_PARTITIONS)" in msg
    assert "--delete --topic" in msg and "MW_ALERTS_PARTITIONS=1" in msg
    assert "without leaders" not in msg
    # nothing was changed on the broker
    assert (await describe_topics(s, [s.topic_alerts]))[s.topic_alerts].partitions == 1


async def test_a_delete_topic_where_a_compacted_one_is_expected_is_a_clear_error(
    mw_settings: Settings,
) -> None:
    s = _renamed(mw_settings, "topic_customers")
    await create_topics(s, [TopicSpec(name=s.topic_customers, partitions=s.customers_partitions)])
    with pytest.raises(TopicMismatchError, match=r"cleanup\.policy=delete but meterwatch expects compact"):
        await ensure_topics(s, [s.topic_customers])


async def test_ensure_topics_can_create_only_a_service_s_topics(mw_settings: Settings) -> None:
    s = _renamed(mw_settings, "topic_alerts")
    assert await ensure_topics(s, [s.topic_alerts]) == [s.topic_alerts]
    assert (await describe_topics(s, [s.topic_alerts]))[s.topic_alerts].partitions == s.alerts_partitions
    with pytest.raises(ValueError, match="not topics of meterwatch"):
        await ensure_topics(s, ["something-else"])
