"""libvips process settings, applied once before the first render.

* **Operation cache off** (``cache_set_max(0)``). libvips caches operations by their
  arguments; a load keyed by filename would serve stale pixels if an object is
  rewritten under the same path, and the cache holds decoded images in memory
  across renders. A render is never repeated with identical arguments in one
  process, so the cache only costs memory. ``DARKROOM_VIPS_CACHE_MAX`` (operations)
  overrides.
* **Worker threads per pipeline**: ``DARKROOM_VIPS_CONCURRENCY`` (an int ≥ 1), else
  libvips' own default (``VIPS_CONCURRENCY`` or the number of cores). A service that
  renders several images in parallel threads should lower it so threads × concurrency
  stays near the core count.

libvips itself is thread-safe; :func:`darkroom_imaging.render.render` holds no
shared mutable state, so it may be called from several threads at once.
"""

from __future__ import annotations

import os
import threading

import pyvips

_lock = threading.Lock()
_configured: dict[str, int] | None = None


def configure(*, concurrency: int | None = None, cache_max: int | None = None) -> dict[str, int]:
    """Apply the settings above once per process and return them.

    ``concurrency`` and ``cache_max`` override the environment. Later calls without
    arguments return the first call's settings; calls with arguments re-apply.
    Raises ``ValueError`` if an environment value is not an integer.
    """
    global _configured
    with _lock:
        if _configured is not None and concurrency is None and cache_max is None:
            return _configured
        env_conc = os.environ.get("DARKROOM_VIPS_CONCURRENCY")
        env_cache = os.environ.get("DARKROOM_VIPS_CACHE_MAX")
        if concurrency is None and env_conc:
            concurrency = int(env_conc)
        if cache_max is None:
            cache_max = int(env_cache) if env_cache else 0
        pyvips.cache_set_max(cache_max)
        if cache_max == 0:
            pyvips.cache_set_max_mem(0)
            pyvips.cache_set_max_files(0)
        if concurrency is not None:
            pyvips.concurrency_set(max(1, concurrency))
        _configured = {"concurrency": pyvips.concurrency_get(), "cache_max": cache_max}
        return _configured


def libvips_version() -> str:
    """Return the linked libvips version, e.g. ``"8.18.7"``."""
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
