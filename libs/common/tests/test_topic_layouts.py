"""Topic layouts: replication factor and min.insync.replicas from the deployment's settings."""

from __future__ import annotations

import pytest

from darkroom_common.errors import ConfigurationError
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_common.topics import (
    TopicLayout,
    default_min_insync_replicas,
    layouts,
    settings_layouts,
)
from darkroom_schemas.topics import TOPICS


@pytest.fixture(autouse=True)
def _no_topic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DARKROOM_TOPIC_PREFIX",
        "DARKROOM_TOPIC_PARTITIONS",
        "DARKROOM_TOPIC_REPLICATION_FACTOR",
        "DARKROOM_TOPIC_MIN_INSYNC_REPLICAS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("rf", "min_isr"), [(1, 1), (2, 1), (3, 2), (5, 4)])
def test_default_min_insync_is_one_less_than_the_replicas(rf: int, min_isr: int) -> None:
    assert default_min_insync_replicas(rf) == min_isr
    for layout in layouts("p.", 4, rf):
        assert layout.replication_factor == rf
        assert layout.min_isr == min_isr
        assert layout.configs()["min.insync.replicas"] == str(min_isr)


def test_every_registry_topic_declares_min_insync_replicas() -> None:
    wanted = layouts("p.", 8, 3)
    assert {w.spec.name for w in wanted} == set(TOPICS)
    for layout in wanted:
        configs = layout.configs()
        # the registry's own configs are kept, min.insync.replicas is added
        assert configs == {**layout.spec.configs(), "min.insync.replicas": "2"}


def test_explicit_min_insync_wins_and_is_bounded_by_the_replicas() -> None:
    assert {w.min_isr for w in layouts("p.", 1, 3, min_insync_replicas=3)} == {3}
    with pytest.raises(ConfigurationError, match=r"min\.insync\.replicas 3 is outside 1\.\.2"):
        layouts("p.", 1, 2, min_insync_replicas=3)
    with pytest.raises(ConfigurationError, match="replication factor 0"):
        TopicLayout(TOPICS["uploaded"], "p.uploaded", 1, 0)


def test_positional_layout_keeps_working() -> None:
    layout = TopicLayout(TOPICS["uploaded"], "p.uploaded", 2, 1)
    assert layout.min_insync_replicas is None
    assert layout.configs()["min.insync.replicas"] == "1"


def test_settings_layouts_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARKROOM_TOPIC_REPLICATION_FACTOR", "3")
    settings = load_settings(DarkroomSettings)
    assert settings.min_insync_replicas == 2
    wanted = settings_layouts(settings)
    assert {(w.replication_factor, w.min_isr) for w in wanted} == {(3, 2)}
    assert {w.name for w in wanted} == {f"darkroom.{name}" for name in TOPICS}
    # a --replication-factor override moves the default min ISR with it
    assert {w.min_isr for w in settings_layouts(settings, replication_factor=1)} == {1}
    monkeypatch.setenv("DARKROOM_TOPIC_MIN_INSYNC_REPLICAS", "3")
    strict = load_settings(DarkroomSettings)
    assert {w.min_isr for w in settings_layouts(strict)} == {3}


def test_min_insync_above_the_replication_factor_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DARKROOM_TOPIC_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("DARKROOM_TOPIC_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(ConfigurationError, match="topic_min_insync_replicas \\(3\\) exceeds"):
        load_settings(DarkroomSettings)
