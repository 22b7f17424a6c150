"""Resolve Java dependencies from Maven Central into a project-local cache.

Each local server has a ``tools/jars/<name>/pom.xml`` listing its artifacts;
``mvn dependency:copy-dependencies`` copies them (and their transitive
dependencies) into ``.tools/jars/<name>/``. A marker file records the pom's
hash so the jars are fetched once and refetched only when the pom changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from darkroom_common.errors import ConfigurationError


def repo_root() -> Path:
    """Return the workspace root (the folder holding ``tools/jars``).

    ``DARKROOM_HOME`` overrides the search, which otherwise walks up from this
    file and then from the current directory.
    """
    if home := os.environ.get("DARKROOM_HOME"):
        return Path(home).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "tools" / "jars").is_dir():
                return candidate
    raise ConfigurationError(
        "cannot find the Darkroom checkout (no tools/jars folder above here); "
        "set DARKROOM_HOME to the repository root"
    )


def ensure_jars(name: str, *, root: Path | None = None) -> Path:
    """Fetch the jars of ``tools/jars/<name>/pom.xml`` once and return their folder.

    Returns:
        ``<root>/.tools/jars/<name>``, holding every jar of the pom's dependency tree.

    Raises:
        ConfigurationError: Maven is missing, or the resolution failed (its output
            is included in the message).
    """
    root = root or repo_root()
    pom = root / "tools" / "jars" / name / "pom.xml"
    out = root / ".tools" / "jars" / name
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = out / ".pom.sha256"
    if marker.is_file() and marker.read_text().strip() == digest:
        return out
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError("Maven (mvn) is not installed; it is needed to fetch the jars")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigurationError(
            f"mvn could not resolve {pom}: {(proc.stdout + proc.stderr)[-2000:]}"
        )
    marker.write_text(digest + "\n")
    return out


def java_classpath(folder: Path) -> str:
    """Return a ``java -cp`` value naming every jar in ``folder`` (sorted, ``:``-joined)."""
    return os.pathsep.join(str(p) for p in sorted(folder.glob("*.jar")))
