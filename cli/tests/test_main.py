"""The ``darkroom`` parser: every command listed, built from the standard library alone.

Each check runs a fresh interpreter, the only place where what an import pulls in
can be seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from darkroom_cli.__main__ import build_parser

COMMANDS = [
    "bridge", "dlq", "kafka", "probe", "exif", "develop", "render", "replay",
    "reset-offsets", "run", "schemas", "serve", "topics", "upload",
]  # fmt: skip

HEAVY = {
    "aiobotocore", "aiohttp", "aiokafka", "botocore", "darkroom_catalog", "darkroom_common",
    "darkroom_dev", "darkroom_imaging", "darkroom_ingest", "darkroom_raw_provider",
    "darkroom_runtime", "darkroom_schemas", "darkroom_variants", "fastapi", "httpx", "numpy",
    "PIL", "pydantic", "pydantic_settings", "pyvips", "rawpy", "rich", "uvicorn",
}  # fmt: skip
"""Top-level packages that only running a command may import."""

HELP_IMPORTS = """
import contextlib, io, json, sys

before = set(sys.modules)
from darkroom_cli.__main__ import main

for argv in [["--help"], *([command, "--help"] for command in sys.argv[1:])]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_help_lists_every_command() -> None:
    [subparsers] = [a for a in build_parser()._actions if a.dest == "command"]
    assert list(subparsers.choices or ()) == COMMANDS


def test_help_of_darkroom_and_of_each_command_imports_only_the_standard_library() -> None:
    done = _python(HELP_IMPORTS, *COMMANDS)
    assert done.returncode == 0, done.stderr
    loaded = {name.partition(".")[0] for name in json.loads(done.stdout)}
    assert sorted(loaded & HEAVY) == []
    assert sorted(loaded - set(sys.stdlib_module_names)) == ["darkroom_cli"]


@pytest.mark.parametrize(
    "argv", [["run"], ["serve"], ["kafka", "start"], ["kafka", "stop"], ["kafka", "status"]]
)
def test_local_stack_commands_without_the_dev_package_exit_2_with_one_line(
    argv: list[str],
) -> None:
    without_dev = (
        "import sys; sys.modules['darkroom_dev'] = None\n"
        "from darkroom_cli.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    done = _python(without_dev, *argv, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    command = "darkroom " + " ".join(argv)
    assert (
        done.stderr
        == f"{command} needs the development tools (darkroom_dev): uv sync --all-groups\n"
    )
