"""mount(): a stage whose handlers, tables or lanes disagree with the registry never starts."""

from __future__ import annotations

from typing import Any

import pytest

from darkroom_common.settings import DarkroomSettings
from darkroom_runtime import Emit, MountError, Route, StageApp, mount, ports_for
from darkroom_runtime.mount import check
from darkroom_runtime.service import EXIT_HANDLERS, run_service
from darkroom_schemas.topics import RouteSpec, Stage, stage


async def nothing(event: Any) -> list[Emit]:
    return []


async def prepare(events: Any) -> Any:
    return nothing


def handlers(name: str, **lanes: str) -> dict[str, Route]:
    return {t: Route.each(nothing, lane=lanes.get(t)) for t in stage(name).consumes}


def test_the_registry_is_consistent_with_itself():
    for s in (stage(n) for n in ("ingest", "raw-provider", "variants", "catalog")):
        tables = dict.fromkeys(s.state, s.consumes[0])
        assert check(s, handlers(s.name), tables) == [], s.name


def test_missing_and_extra_handlers_are_named():
    routes = handlers("raw-provider")
    del routes["image-deleted"]
    routes["cataloged"] = Route.each(nothing)
    problems = check(stage("raw-provider"), routes, {})
    assert problems == [
        "no handler for image-deleted",
        "handlers for topics it does not consume: cataloged",
    ]


def test_an_emit_outside_produces_and_misplaced_tables_and_batches_are_named():
    bad = Stage(
        "raw-provider",
        routes=(RouteSpec("validated", ("cataloged",), "x"), RouteSpec("image-deleted", (), "y")),
        produces=("validated",),
        state=("masters",),
    )
    routes = {
        "validated": Route.batched(prepare, max_records=4, window_s=0.1),
        "image-deleted": Route(handle=nothing, prepare=prepare, lane="validated"),
    }
    problems = check(bad, routes, {"masters": "nowhere", "extra": "validated"})
    assert "route validated emits cataloged, which raw-provider does not produce" in problems
    assert "tables the registry does not list: extra" in problems
    assert "table masters is written from lane 'nowhere', which no route runs in" in problems
    assert "lane validated: a batched route must be alone in its lane" in problems
    assert "route image-deleted: give exactly one of a handler or a batch preparer" in problems


def test_mount_refuses_with_one_sentence_and_a_worker_of_another_stage(tmp_path):
    settings = DarkroomSettings(data_dir=tmp_path)
    ports = ports_for("raw-provider", settings)
    app = StageApp("raw-provider", settings)
    with pytest.raises(
        MountError, match=r"raw-provider cannot start: no handler for image-deleted\.$"
    ):
        mount(app, "raw-provider", {"validated": Route.each(nothing)}, ports)
    with pytest.raises(MountError, match="cannot mount stage catalog on the raw-provider worker"):
        mount(app, "catalog", handlers("catalog"), ports)
    assert mount(app, "raw-provider", handlers("raw-provider"), ports) is app
    assert app.topics == ["darkroom.image-deleted", "darkroom.validated"]


def test_run_service_exits_5_on_a_handler_mismatch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DARKROOM_DATA_DIR", str(tmp_path))

    def build(settings: DarkroomSettings) -> StageApp:
        app = StageApp("raw-provider", settings)
        return mount(app, "raw-provider", {}, ports_for("raw-provider", settings))

    assert run_service("raw-provider", DarkroomSettings, build) == EXIT_HANDLERS
    err = capsys.readouterr().err
    assert "raw-provider cannot start: no handler for validated, image-deleted." in err
