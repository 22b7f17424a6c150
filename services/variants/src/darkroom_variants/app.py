"""The variants worker: consumer group ``<topic prefix>variants`` (planner and render lanes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from darkroom_common.ports import Ports
from darkroom_runtime import StageApp, mount, ports_for
from darkroom_variants.routes import routes
from darkroom_variants.settings import VariantsSettings


def build_app(settings: VariantsSettings, ports: Ports | None = None) -> StageApp:
    """Return the variants worker with its routes mounted.

    Rendering runs on a pool of ``settings.render_threads`` threads, shut down with
    the worker.

    Args:
        ports: default :func:`~darkroom_runtime.ports_for` the settings.

    Raises:
        MountError: the routes disagree with the topic registry.
    """
    ports = ports or ports_for(
        "variants", settings, gallery_settings_wait_s=settings.gallery_settings_wait_s
    )
    app = StageApp("variants", settings)
    executor = ThreadPoolExecutor(settings.render_threads, thread_name_prefix="render")

    async def stop_rendering() -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    app.on_stop(stop_rendering)
    return mount(app, "variants", routes(ports, settings, executor), ports)
