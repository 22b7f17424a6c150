"""A one-agent Faust worker for test_gallery_settings: echoes what a gallery's settings are.

Reads gallery ids (raw bytes) from ``<prefix>probe-in`` and answers on
``<prefix>probe-out`` with the settings its GlobalTable holds, as JSON.
"""

import sys

import faust

from darkroom_common.faust_app import create_app
from darkroom_common.gallery_settings import cache_for
from darkroom_common.settings import DarkroomSettings

settings = DarkroomSettings()
app = create_app(f"{settings.topic_prefix}probe", settings)
view = cache_for(app, settings)
probe_in = app.topic(settings.topic("probe-in"), value_serializer="raw", key_serializer="raw")
probe_out = app.topic(settings.topic("probe-out"), value_serializer="raw", key_serializer="raw")


@app.agent(probe_in)
async def echo(stream: faust.StreamT) -> None:
    async for gallery in stream:
        await view.ready()
        answer = view.get(gallery.decode()).model_dump_json(
            include={"gallery_id", "processing_mode", "processing_provider"}
        )
        await (await probe_out.send(key=gallery, value=answer.encode()))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
