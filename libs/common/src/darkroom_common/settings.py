"""Service settings: one pydantic-settings class per service on a shared base.

Values come, highest priority first, from: arguments, the service's own
environment prefix (``DARKROOM_INGEST_…``), the shared prefix (``DARKROOM_…``),
a ``.env`` file, then secrets files in ``DARKROOM_SECRETS_DIR``. Nested
settings use ``__`` (``DARKROOM_STORAGE__BACKEND=s3``). ``KAFKA_BOOTSTRAP_SERVERS``
is honoured as-is, so one variable points every service and test at a cluster.
Secrets are :class:`pydantic.SecretStr` and print as ``**********``.

A bad value stops the service at start-up with :class:`ConfigurationError`,
whose message names every offending variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from darkroom_common.auth import AuthSettings
from darkroom_common.errors import ConfigurationError
from darkroom_common.storage.config import StorageSettings

SHARED_PREFIX = "DARKROOM_"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _bootstrap_from_env() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


class DarkroomSettings(BaseSettings):
    """Settings every service shares. Subclasses set ``service`` and an env prefix."""

    service: ClassVar[str] = "darkroom"
    model_config = SettingsConfigDict(
        env_prefix=SHARED_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
        secrets_dir=os.environ.get("DARKROOM_SECRETS_DIR") or None,
    )

    kafka_bootstrap_servers: str = Field(
        default_factory=_bootstrap_from_env,
        description="Comma-separated host:port list; KAFKA_BOOTSTRAP_SERVERS overrides the default.",
    )
    topic_prefix: str = Field(
        default="darkroom.",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every registry topic name, e.g. 'darkroom.uploaded'.",
    )
    topic_partitions: int = Field(
        default=8, ge=1, le=1024, description="Partitions of every pipeline topic."
    )
    topic_replication_factor: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Replicas of every registry topic; the start-up check refuses fewer.",
    )
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="min.insync.replicas of every registry topic; default "
        "max(1, replication factor - 1). At most the replication factor.",
    )
    data_dir: Path = Field(
        default=Path(".darkroom/data"),
        description="Where a service keeps local state (the catalog's tables in RocksDB).",
    )
    profiles_dir: Path | None = Field(
        default=None,
        description="Folder of extra <name>.json variant profiles, besides the built-in ones "
        "(ingest, variants and the catalog read the same folder).",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(default=True, description="JSON lines (true) or plain text logs.")
    web_port: int = Field(
        default=6066, ge=1, le=65535, description="The worker's HTTP port (probes, metrics, API)."
    )
    web_host: str = Field(default="127.0.0.1", description="The address the HTTP server binds.")
    web_url: str | None = Field(
        default=None,
        description="The URL other workers reach this one at (forwarded API requests); "
        "default http://<web_host or the host name>:<web_port>.",
    )
    session_timeout_s: float = Field(
        default=10.0,
        ge=6,
        le=300,
        description="Kafka consumer session timeout: how soon a dead worker's partitions move.",
    )
    commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="At most one offset commit per interval (forced on rebalance and stop).",
    )
    revoke_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a revoked partition's event in hand may finish before it is "
        "abandoned (uncommitted) to its next owner.",
    )
    shutdown_grace_s: float = Field(
        default=15.0, ge=0, le=600, description="How long a stopping worker lets events finish."
    )
    max_poll_records: int = Field(
        default=500, ge=1, le=100_000, description="Most records one fetch hands to the lanes."
    )
    max_retries: int = Field(
        default=3, ge=0, le=20, description="Retries of a transient failure before dead-lettering."
    )
    retry_base_delay_s: float = Field(default=0.2, gt=0, le=60)
    retry_max_delay_s: float = Field(default=5.0, gt=0, le=600)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Insert the shared ``DARKROOM_`` prefix below the service's own prefix."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.model_config.get("env_prefix") != SHARED_PREFIX:
            sources.append(
                EnvSettingsSource(
                    settings_cls,
                    env_prefix=SHARED_PREFIX,
                    env_nested_delimiter="__",
                    case_sensitive=False,
                )
            )
        sources += [dotenv_settings, file_secret_settings]
        return tuple(sources)

    @model_validator(mode="after")
    def _min_insync_within_replicas(self) -> DarkroomSettings:
        """Refuse ``topic_min_insync_replicas`` above ``topic_replication_factor``.

        Such a topic would refuse every ``acks=all`` write (NOT_ENOUGH_REPLICAS).
        """
        wanted = self.topic_min_insync_replicas
        if wanted is not None and wanted > self.topic_replication_factor:
            raise ValueError(
                f"topic_min_insync_replicas ({wanted}) exceeds topic_replication_factor "
                f"({self.topic_replication_factor}): acks=all writes could never succeed"
            )
        return self

    @property
    def min_insync_replicas(self) -> int:
        """``topic_min_insync_replicas`` if set, else ``max(1, topic_replication_factor - 1)``."""
        if self.topic_min_insync_replicas is not None:
            return self.topic_min_insync_replicas
        return max(1, self.topic_replication_factor - 1)

    def topic(self, name: str) -> str:
        """Return the broker-side name of registry topic ``name``."""
        return f"{self.topic_prefix}{name}"


S = TypeVar("S", bound=DarkroomSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build and validate ``cls`` from the environment (and ``overrides``).

    Raises:
        ConfigurationError: one line per invalid value, naming the variable to fix.
    """
    try:
        return cls(**overrides)
    except SettingsError as exc:  # a JSON value that does not parse; names the field, not the value
        raise ConfigurationError(f"invalid {cls.service} settings: {exc}") from exc
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for err in exc.errors():
            loc = "__".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{prefix}{loc}: {err['msg']}")
        raise ConfigurationError(f"invalid {cls.service} settings: " + "; ".join(lines)) from exc
