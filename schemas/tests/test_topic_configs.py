"""``TopicSpec.configs``: the registry's topic configs, plus a deployment's min.insync.replicas."""

from __future__ import annotations

from darkroom_schemas.topics import TOPICS


def test_configs_without_min_insync_are_the_registrys_own() -> None:
    uploaded = TOPICS["uploaded"]
    assert uploaded.configs() == {
        "cleanup.policy": "delete",
        "retention.ms": str(uploaded.retention_ms),
    }


def test_configs_with_min_insync_add_it_for_every_topic() -> None:
    for spec in TOPICS.values():
        configs = spec.configs(2)
        assert configs["min.insync.replicas"] == "2"
        assert configs["cleanup.policy"] == spec.cleanup_policy
        assert configs["retention.ms"] == str(spec.retention_ms)
