"""The stage runtime every Darkroom service is mounted on.

A stage declares one :class:`Route` per consumed topic; :func:`mount` builds the
consumers from the topic registry and refuses to start on any disagreement;
:func:`run_service` runs the worker. The runtime owns the order that makes the
pipeline lossless: a handler's events are acknowledged, then its table writes are in
the changelog, and only then is the offset committed (:mod:`.checkpoint`); a
partition's tables are restored before any of its events is handled (:mod:`.tables`).
See ``docs/stage-runtime.md``.
"""

from darkroom_runtime.app import Located, StageApp
from darkroom_runtime.mount import MountError, mount, ports_for
from darkroom_runtime.routes import Batching, Emit, Handler, Prepare, Route
from darkroom_runtime.runner import SourceRef, UndecodableEvent
from darkroom_runtime.service import run_service
from darkroom_runtime.tables import Table

__all__ = [
    "Batching",
    "Emit",
    "Handler",
    "Located",
    "MountError",
    "Prepare",
    "Route",
    "SourceRef",
    "StageApp",
    "Table",
    "UndecodableEvent",
    "mount",
    "ports_for",
    "run_service",
]
