"""Development-only tools of the Darkroom workspace; no service or image depends on them.

* :mod:`darkroom_dev.local`: stand-ins for production infrastructure on this machine (a
  KRaft Kafka broker and an S3 server run with java, the jars they need, the four services
  as a process group, :class:`~darkroom_dev.local.pipeline.LocalPipeline`).
* :mod:`darkroom_dev.testing`: pytest plugins with the session-scoped fixtures for the real
  broker and object server, the browser, the figures report and the S3 fault proxy.
* :mod:`darkroom_dev.load`: the load generator behind ``bench/load_bench.py``.

Installed by the root's ``dev`` dependency group (``uv sync --all-groups``); the
``darkroom run``, ``serve`` and ``kafka`` commands import it when they run.
"""
