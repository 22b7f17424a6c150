"""Print build time, develop time and the child's peak memory for 36 MP and 60 MP Bayer DNGs.

Usage: ``.venv/bin/python bench/raw_size_bench.py [--full]``. The DNGs are built as in
``libs/imaging/tests/test_raw_size.py`` (from a real corpus photo) into a temp folder and
developed with the pipeline's defaults (``embedded-preview`` → half-size demosaic, 3 GiB
cap); ``--full`` also develops them full size (``policy="develop"``, no long-edge bound).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libs" / "imaging" / "tests"))

from test_raw_size import PHOTO, PROVIDER_MEMORY_CAP, SIZES, bayer_dng

from darkroom_imaging.raw import (
    DEFAULT_MASTER_BOX,
    DEFAULT_POLICY,
    Developed,
    develop,
    master_long_edge,
)


def main() -> None:
    """Build each DNG, develop it, print one line of figures per development."""
    full = "--full" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="darkroom-rawsize-") as tmp:
        for label, (width, height) in sorted(SIZES.items()):
            start = time.monotonic()
            dng = bayer_dng(PHOTO, width, height, Path(tmp) / f"synthetic_{label}mp.dng")
            built = time.monotonic() - start
            runs = [(DEFAULT_POLICY, master_long_edge(width, height, 1, DEFAULT_MASTER_BOX))]
            if full:
                runs.append(("develop", None))
            for policy, edge in runs:
                start = time.monotonic()
                dev = develop(
                    dng,
                    policy=policy,  # type: ignore[arg-type]
                    min_long_edge=edge,
                    max_memory_bytes=PROVIDER_MEMORY_CAP,
                )
                seconds = time.monotonic() - start
                if not isinstance(dev, Developed):
                    print(f"{label} MP {policy}: FAILED {dev.reason.value}: {dev.message}")
                    continue
                peak = dev.provenance["child_peak_rss_bytes"] / 2**20
                print(
                    f"{label} MP {width}x{height} ({dng.stat().st_size / 2**20:.0f} MiB DNG, "
                    f"built in {built:.1f} s) {policy} long-edge={edge}: "
                    f"{dev.provenance['decode_path']} {dev.width}x{dev.height} in {seconds:.1f} s, "
                    f"child peak RSS {peak:.0f} MiB (cap {PROVIDER_MEMORY_CAP / 2**20:.0f} MiB)"
                )


if __name__ == "__main__":
    main()
