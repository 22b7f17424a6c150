"""Engine benchmark (``make bench``; not a test): Darkroom vs Pillow vs sharp.

What it measures, on ``../shared/corpus/large/*.jpg`` except the 280 MP file:

* the ``bench`` profile (thumb 200² cover, medium 800×600, large 1920×1080 JPEG,
  large_webp) rendered by (a) Darkroom's engine (one decode), (b) Pillow done
  naively (open, ``exif_transpose``, resize, save — per variant), (c) sharp (one
  pipeline per variant, as sharp is normally used), and (d) the *floor*: decoding at
  the shrink-on-load factor the largest variant needs plus encoding the outputs.
  Median wall time, CPU time and peak RSS per image; single-threaded
  (``VIPS_CONCURRENCY=1`` / ``sharp.concurrency(1)``) and with default threads. Each
  engine runs in its own subprocess (so peak RSS is its own), rounds interleaved.
* AVIF: encode time, size and SSIM (against the uncompressed 1920×1080-bound image)
  over quality × effort, single-threaded; picks the default profile's setting: SSIM
  ≥ 0.97 and encode ≤ 1.0 s, the smallest file, and among files within 2% of that
  size the fastest encode.
* peak RSS rendering the 280 MP JPEG with the ``default`` profile.

Run: ``tools/bootstrap/bench.sh && .venv/bin/python bench/engine_bench.py``
(``--rounds``, ``--repeat``, ``--skip-avif``, ``--json PATH``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = (
    Path(
        os.environ.get("DARKROOM_CORPUS")
        or Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    / "large"
)
GIANT = CORPUS / "giant_20000x14000_gray.jpg"
ENGINES = ("darkroom", "floor", "pillow", "sharp")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- workers (run in their own process) -------------------------------------


def worker_darkroom(image: Path, repeat: int, profile: str, max_pixels: int) -> dict[str, Any]:
    from darkroom_imaging.profiles import load_profile
    from darkroom_imaging.render import RenderContext, render

    specs = load_profile(profile).specs
    ctx = RenderContext(max_pixels=max_pixels, source_sha256="0" * 64)
    result = render(image, specs, context=ctx)  # warm-up
    assert result.ok, result.failures
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = _cpu(), time.perf_counter()
        render(image, specs, context=ctx)
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
    sizes = {n: [v.width, v.height, v.bytes] for n, v in result.rendered.items()}
    return {"wall": wall, "cpu": cpu, "peak_rss_kb": _peak_kb(), "sizes": sizes}


def worker_floor(image: Path, repeat: int, profile: str, max_pixels: int) -> dict[str, Any]:
    """Decode at the renderer's shrink factor + encode the finished outputs, nothing else."""
    import pyvips

    from darkroom_imaging.profiles import load_profile
    from darkroom_imaging.render import RenderContext, _encode, render

    specs = load_profile(profile).specs
    ctx = RenderContext(max_pixels=max_pixels)
    result = render(image, specs, context=ctx)
    assert result.decode is not None
    shrink = result.decode.shrink
    finals = {
        s.name: pyvips.Image.new_from_buffer(result.rendered[s.name].data, "").copy_memory()
        for s in specs
    }
    wall, cpu, decode_wall = [], [], []
    for _ in range(repeat + 1):
        c0, t0 = _cpu(), time.perf_counter()
        opts = {"shrink": shrink} if shrink > 1 else {}
        pyvips.Image.new_from_file(str(image), access="sequential", **opts).copy_memory()
        t1 = time.perf_counter()
        for s in specs:
            _encode(finals[s.name], s, ctx)
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
        decode_wall.append(t1 - t0)
    return {
        "wall": wall[1:],
        "cpu": cpu[1:],
        "decode_wall": decode_wall[1:],
        "peak_rss_kb": _peak_kb(),
        "shrink": shrink,
    }


def worker_pillow(image: Path, repeat: int, profile: str, max_pixels: int) -> dict[str, Any]:
    from PIL import Image, ImageOps

    from darkroom_imaging.profiles import load_profile

    Image.MAX_IMAGE_PIXELS = max_pixels
    specs = load_profile(profile).specs

    def once() -> dict[str, list[int]]:
        sizes = {}
        for s in specs:
            with Image.open(image) as src:
                img = ImageOps.exif_transpose(src.convert("RGB"))
                if s.fit == "cover":
                    img = ImageOps.fit(img, (s.width, s.height), Image.Resampling.LANCZOS)
                else:
                    img = img.copy()
                    img.thumbnail((s.width, s.height), Image.Resampling.LANCZOS, reducing_gap=None)
                buf = io.BytesIO()
                if s.format == "jpeg":
                    img.save(
                        buf,
                        "JPEG",
                        quality=s.quality,
                        optimize=True,
                        progressive=False,
                        subsampling=2,
                    )
                else:
                    img.save(buf, "WEBP", quality=s.quality, method=s.effort or 4)
                sizes[s.name] = [img.width, img.height, buf.tell()]
        return sizes

    sizes = once()
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = _cpu(), time.perf_counter()
        once()
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
    return {"wall": wall, "cpu": cpu, "peak_rss_kb": _peak_kb(), "sizes": sizes}


WORKERS = {"darkroom": worker_darkroom, "floor": worker_floor, "pillow": worker_pillow}


# --- orchestration --------------------------------------------------------------


def run_engine(
    engine: str,
    image: Path,
    repeat: int,
    threads: int,
    profile: str = "bench",
    max_pixels: int = 100_000_000,
) -> dict[str, Any]:
    env = dict(os.environ)
    if threads:
        env["VIPS_CONCURRENCY"] = str(threads)
        env["DARKROOM_VIPS_CONCURRENCY"] = str(threads)
    else:
        env.pop("VIPS_CONCURRENCY", None)
        env.pop("DARKROOM_VIPS_CONCURRENCY", None)
    if engine == "sharp":
        from darkroom_imaging.profiles import load_profile

        specs = [s.model_dump(mode="json") for s in load_profile(profile).specs]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(specs, fh)
        cmd = [
            "node",
            str(HERE / "sharp/render.mjs"),
            str(image),
            fh.name,
            str(repeat),
            str(threads),
        ]
    else:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            engine,
            "--image",
            str(image),
            "--repeat",
            str(repeat),
            "--profile",
            profile,
            "--max-pixels",
            str(max_pixels),
        ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} failed on {image.name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_profile(images: list[Path], rounds: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for threads, label in ((1, "1 thread"), (0, "default threads")):
        for image in images:
            samples: dict[str, dict[str, list[float]]] = {
                e: {"wall": [], "cpu": [], "rss": []} for e in ENGINES
            }
            extra: dict[str, Any] = {}
            for _ in range(rounds):
                for engine in ENGINES:
                    n = 1 if engine == "pillow" else repeat
                    res = run_engine(engine, image, n, threads)
                    samples[engine]["wall"] += res["wall"]
                    samples[engine]["cpu"] += res["cpu"]
                    samples[engine]["rss"].append(res["peak_rss_kb"] / 1024)
                    if engine == "floor":
                        extra["shrink"] = res["shrink"]
                        extra.setdefault("decode", []).extend(res["decode_wall"])
            row = {
                "threads": label,
                "image": image.name,
                "shrink": extra["shrink"],
                "floor_decode": statistics.median(extra["decode"]),
            }
            for engine in ENGINES:
                row[engine] = {
                    "wall": statistics.median(samples[engine]["wall"]),
                    "cpu": statistics.median(samples[engine]["cpu"]),
                    "rss_mb": max(samples[engine]["rss"]),
                }
            rows.append(row)
            print_row(row)
    return rows


def print_row(row: dict[str, Any]) -> None:
    sharp = row["sharp"]["wall"]
    floor = row["floor"]["wall"]
    cells = []
    for engine in ENGINES:
        r = row[engine]
        cells.append(f"{engine} {r['wall']:.3f}s cpu {r['cpu']:.3f}s rss {r['rss_mb']:.0f}MB")
    print(
        f"[{row['threads']}] {row['image']} (shrink {row['shrink']}, floor decode {row['floor_decode']:.3f}s)"
    )
    print("    " + " | ".join(cells))
    print(
        f"    darkroom/sharp {row['darkroom']['wall'] / sharp:.2f}x  pillow/sharp {row['pillow']['wall'] / sharp:.2f}x"
        f"  darkroom/floor {row['darkroom']['wall'] / floor:.2f}x",
        flush=True,
    )


def _ssim(a: Any, b: Any) -> float:
    """Mean SSIM of two same-size 8-bit sRGB pyvips images on luminance (Gaussian σ=1.5)."""
    import pyvips

    def luma(img: Any) -> Any:
        return img.colourspace("b-w").extract_band(0).cast("float")

    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda img: img.gaussblur(1.5, precision="float")  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    ssim = ((mx * my * 2 + c1) * (sxy * 2 + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(pyvips.Image.avg(ssim))


def worker_avif(image: Path) -> dict[str, Any]:
    import pyvips

    from darkroom_imaging.render import render
    from darkroom_imaging.specs import VariantSpec

    ref_spec = VariantSpec(name="ref", width=1920, height=1080, format="png")
    ref = pyvips.Image.new_from_buffer(
        render(image, [ref_spec]).rendered["ref"].data, ""
    ).copy_memory()
    rows = []
    grid = [(e, q) for e in (0, 1, 2, 3) for q in (60, 70, 75, 80, 85, 90)] + [(4, 70), (4, 80)]
    for effort, q in grid:
        t0 = time.perf_counter()
        data = ref.heifsave_buffer(
            Q=q, effort=effort, compression="av1", bitdepth=8, keep="icc", profile="srgb"
        )
        seconds = time.perf_counter() - t0
        dec = pyvips.Image.new_from_buffer(data, "").copy_memory()
        rows.append(
            {
                "effort": effort,
                "quality": q,
                "seconds": seconds,
                "bytes": len(data),
                "ssim": _ssim(ref, dec),
            }
        )
    return {"rows": rows, "size": [ref.width, ref.height]}


def bench_avif(image: Path) -> dict[str, Any]:
    env = dict(os.environ, VIPS_CONCURRENCY="1", DARKROOM_VIPS_CONCURRENCY="1")
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "avif", "--image", str(image)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nAVIF on {image.name} ({res['size'][0]}x{res['size'][1]}), 1 thread:")
    print("  effort quality  seconds   bytes    SSIM")
    for r in res["rows"]:
        print(
            f"  {r['effort']:6d} {r['quality']:7d} {r['seconds']:8.3f} {r['bytes']:7d} {r['ssim']:7.4f}"
        )
    ok = [r for r in res["rows"] if r["ssim"] >= 0.97 and r["seconds"] <= 1.0]
    pick = None
    if ok:
        # Smallest file, but among files within 2% of it the fastest encode: timing
        # headroom under the 1.0 s budget is worth more than 1-2% of bytes.
        smallest = min(r["bytes"] for r in ok)
        pick = min((r for r in ok if r["bytes"] <= smallest * 1.02), key=lambda r: r["seconds"])
    print(f"  pick (SSIM ≥ 0.97, ≤ 1.0 s, smallest ±2%, then fastest): {pick}")
    res["pick"] = pick
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=[*WORKERS, "avif"])
    parser.add_argument("--image", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="bench")
    parser.add_argument("--max-pixels", type=int, default=100_000_000)
    parser.add_argument("--skip-avif", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.worker == "avif":
        print(json.dumps(worker_avif(args.image)))
        return 0
    if args.worker:
        print(
            json.dumps(WORKERS[args.worker](args.image, args.repeat, args.profile, args.max_pixels))
        )
        return 0
    if not (HERE / "sharp/node_modules/sharp").exists():
        print("sharp is not installed: run tools/bootstrap/bench.sh", file=sys.stderr)
        return 2
    images = sorted(p for p in CORPUS.glob("*.jpg") if p != GIANT)
    report: dict[str, Any] = {"profile": bench_profile(images, args.rounds, args.repeat)}
    if not args.skip_avif:
        report["avif"] = bench_avif(CORPUS / "canon_5d3_22mp.jpg")
    giant = run_engine("darkroom", GIANT, 1, 0, profile="default", max_pixels=300_000_000)
    report["giant"] = {"wall": giant["wall"][0], "peak_rss_mb": giant["peak_rss_kb"] / 1024}
    print(
        f"\n280 MP JPEG, default profile, default threads: {giant['wall'][0]:.2f}s, "
        f"peak RSS {giant['peak_rss_kb'] / 1024:.0f} MB (target ≤ 300 MB)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
