"""The raw-provider worker: consumer group ``<topic prefix>raw-provider``."""

from __future__ import annotations

from darkroom_common.ports import Ports
from darkroom_raw_provider.develop import LocalProvider
from darkroom_raw_provider.imagen import ImagenProvider
from darkroom_raw_provider.providers import RawProvider
from darkroom_raw_provider.routes import routes
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_runtime import StageApp, mount, ports_for


def providers_for(settings: RawProviderSettings, ports: Ports) -> dict[str, RawProvider]:
    """Return the RAW providers by ``processing_provider`` name: ``local`` and ``imagen``."""
    return {
        "local": LocalProvider(ports.store, settings, ports.metrics),
        "imagen": ImagenProvider(
            ports.store, settings.imagen, metrics=ports.metrics, work_dir=settings.work_dir
        ),
    }


def build_app(settings: RawProviderSettings, ports: Ports | None = None) -> StageApp:
    """Return the raw-provider worker with its routes mounted.

    Args:
        ports: default :func:`~darkroom_runtime.ports_for` the settings.
    """
    ports = ports or ports_for(
        "raw-provider", settings, gallery_settings_wait_s=settings.gallery_settings_wait_s
    )
    app = StageApp("raw-provider", settings)
    providers = providers_for(settings, ports)

    async def close_providers() -> None:
        for provider in providers.values():
            await provider.aclose()

    app.on_stop(close_providers)
    return mount(app, "raw-provider", routes(ports, providers), ports)
