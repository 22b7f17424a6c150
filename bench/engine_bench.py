"""Engine benchmark (``make bench``; not a test): Darkroom vs Pillow vs sharp.

What it measures, on ``../shared/corpus/large/*.jpg`` except the 280 MP file, plus a
36 MP (7360×4912) camera-like JPEG built at run time in a temporary directory from the
22 MP Canon photo (libvips Lanczos 3 upscale, ``jpegsave`` Q=92 — libvips' default
4:4:4 chroma at that quality — with the camera's EXIF and ICC kept); the corpus has no
36 MP JPEG:

* the ``bench`` profile (thumb 200² cover, medium 800×600, large 1920×1080 JPEG,
  large_webp) rendered by (a) Darkroom's engine (one decode), (b) Pillow done
  naively (open, ``exif_transpose``, resize, save — per variant), (c) sharp (one
  pipeline per variant, as sharp is normally used), and (d) the *floor*: decoding at
  the shrink-on-load factor the largest variant needs plus encoding the outputs (the
  very pixels Darkroom encodes, not its decoded output files, which encode faster).
  Median wall time, CPU time and peak RSS per image; single-threaded
  (``VIPS_CONCURRENCY=1`` / ``sharp.concurrency(1)``) and with default threads. Each
  engine runs in its own subprocess (so peak RSS is its own), rounds interleaved.
* a per-step profile of Darkroom's render on the 36 MP file (header, decode at the
  shrink-on-load factor, reduce, colour, copy to memory, per variant fit,
  placeholders and encode; each step materialised in memory so it can be timed
  alone), median CPU and wall seconds, single-threaded and with default threads,
  next to the in-process render and floor totals;
* the Darkroom / floor ratio (CPU and wall) of the 36 MP file, printed last with
  sharp's ratio (target: Darkroom ≤ 1.15× the floor): the separate-process medians
  above and a *paired* figure, render and floor alternating in one process (median
  of the per-pair ratios), which a loaded machine disturbs less;
* AVIF: encode time, size and SSIM (against the uncompressed 1920×1080-bound image)
  over quality × effort, single-threaded; picks the default profile's setting: SSIM
  ≥ 0.97 and encode ≤ 1.0 s, the smallest file, and among files within 2% of that
  size the fastest encode.
* peak RSS rendering the 280 MP JPEG with the ``default`` profile.

Run: ``tools/bootstrap/bench.sh && .venv/bin/python bench/engine_bench.py``
(``--rounds``, ``--repeat``, ``--skip-avif``, ``--skip-giant``, ``--only NAME``
(substring of the image file names; ``36mp`` for the built one), ``--json PATH``).
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
CAMERA_22MP = CORPUS / "canon_5d3_22mp.jpg"
SIZE_36MP = (7360, 4912)  # a 36 MP full-frame sensor (Nikon D800/D810)
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


def _floor_setup(image: Path, specs: Any, ctx: Any) -> tuple[int, dict[str, Any]]:
    """Return the renderer's shrink-on-load factor and its final pixels per spec name.

    The outputs the floor encodes are the very pixels the renderer encodes (its
    decode and per-variant preparation, run once here, before timing), not the
    decoded output files: a lossy file decoded and encoded again is easier to encode
    (WebP effort 4: ~15 % faster on the 36 MP file's large_webp), which would lower
    the floor.
    """
    from darkroom_imaging import vipsconfig
    from darkroom_imaging.render import _decode, _prepare

    vipsconfig.configure()  # as render() does: operation cache off, same threads
    base, decode = _decode(image, specs, ctx)
    finals = {s.name: _prepare(base, decode, s, ctx)[0].copy_memory() for s in specs}
    return decode.shrink, finals


def _floor_once(image: Path, shrink: int, finals: dict[str, Any], specs: Any, ctx: Any) -> float:
    """Decode ``image`` at ``shrink`` into memory, encode ``finals``; return the decode's wall s."""
    import pyvips

    from darkroom_imaging.render import _encode

    t0 = time.perf_counter()
    opts = {"shrink": shrink} if shrink > 1 else {}
    pyvips.Image.new_from_file(str(image), access="sequential", **opts).copy_memory()
    decode_wall = time.perf_counter() - t0
    for s in specs:
        _encode(finals[s.name], s, ctx)
    return decode_wall


def worker_floor(image: Path, repeat: int, profile: str, max_pixels: int) -> dict[str, Any]:
    """Decode at the renderer's shrink factor + encode the finished outputs, nothing else."""
    from darkroom_imaging.profiles import load_profile
    from darkroom_imaging.render import RenderContext

    specs = load_profile(profile).specs
    ctx = RenderContext(max_pixels=max_pixels)
    shrink, finals = _floor_setup(image, specs, ctx)
    wall, cpu, decode_wall = [], [], []
    for _ in range(repeat + 1):
        c0, t0 = _cpu(), time.perf_counter()
        decode_wall.append(_floor_once(image, shrink, finals, specs, ctx))
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
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


def worker_profile(image: Path, repeat: int, profile: str, max_pixels: int) -> dict[str, Any]:
    """Time each step of Darkroom's render alone (CPU and wall seconds, medians).

    libvips is lazy: inside :func:`render` decode, reduce and colour run fused in one
    pipeline. Here each step's result is copied to memory so the step can be timed
    alone; ``steps_sum`` vs ``render`` shows what fusing saves or costs. ``floor`` is
    the decode step plus the encode steps (what :func:`worker_floor` measures).
    """
    import pyvips

    from darkroom_imaging import vipsconfig
    from darkroom_imaging.profiles import load_profile
    from darkroom_imaging.render import (
        RenderContext,
        _encode,
        _exact,
        _fit,
        _orientation,
        _placeholders,
        _strip,
        _to_srgb8,
        render,
    )

    vipsconfig.configure()
    specs = load_profile(profile).specs
    ctx = RenderContext(max_pixels=max_pixels, source_sha256="0" * 64)
    decode = render(image, specs, context=ctx).decode
    assert decode is not None
    src = str(image)

    def timed(fn: Any) -> tuple[float, float, Any]:
        c0, t0 = _cpu(), time.perf_counter()
        out = fn()
        return _cpu() - c0, time.perf_counter() - t0, out

    samples: dict[str, dict[str, list[float]]] = {}

    def note(step: str, cpu: float, wall: float) -> None:
        samples.setdefault(step, {"cpu": [], "wall": []})
        samples[step]["cpu"].append(cpu)
        samples[step]["wall"].append(wall)

    def one_pass() -> dict[str, tuple[float, float]]:
        steps: dict[str, tuple[float, float]] = {}

        def header() -> pyvips.Image:
            head = pyvips.Image.new_from_file(src, access="sequential")
            _orientation(head)
            return head

        c, w, _ = timed(header)
        steps["header (open, no pixels)"] = (c, w)
        opts = {"shrink": decode.shrink} if decode.shrink > 1 else {}
        c, w, loaded = timed(
            lambda: pyvips.Image.new_from_file(
                src, access="sequential", fail_on=ctx.fail_on, **opts
            ).copy_memory()
        )
        steps[f"decode (shrink-on-load {decode.shrink})"] = (c, w)
        tw, th = decode.intermediate_width, decode.intermediate_height
        if decode.orientation >= 5:
            tw, th = th, tw

        def reduce() -> pyvips.Image:
            if (loaded.width, loaded.height) == (tw, th):
                return loaded
            out = loaded.resize(tw / loaded.width, vscale=th / loaded.height, kernel="lanczos3")
            return _exact(out, tw, th).copy_memory()

        c, w, reduced = timed(reduce)
        steps["reduce (Lanczos 3 to the largest variant)"] = (c, w)
        c, w, srgb = timed(lambda: _strip(_to_srgb8(reduced)[0]).copy_memory())
        steps[f"colour ({decode.colour}) + copy_memory"] = (c, w)

        def autorot() -> pyvips.Image:
            if decode.orientation == 1:
                return srgb
            img = srgb.copy()
            img.set_type(pyvips.GValue.gint_type, "orientation", decode.orientation)
            return img.autorot().copy_memory()

        c, w, base = timed(autorot)
        steps["autorot"] = (c, w)
        done: dict[tuple[int, int, str], Any] = {}
        shared: dict[bool, tuple[str, str]] = {}  # render()'s per-source placeholder cache
        for spec in specs:
            key = (spec.width, spec.height, spec.fit)
            if key in done:  # shares pixels with an earlier spec, as in render()
                pixels = done[key]
            else:
                c, w, pixels = timed(
                    lambda s=spec: _fit(
                        base, s, decode.oriented_width, decode.oriented_height
                    ).copy_memory()
                )
                steps[f"{spec.name}: fit {pixels.width}x{pixels.height}"] = (c, w)
                c, w, _ = timed(lambda s=spec, p=pixels: _placeholders(base, p, s, ctx, shared))
                steps[f"{spec.name}: placeholders"] = (c, w)
                done[key] = pixels
            c, w, _ = timed(lambda s=spec, p=pixels: _encode(p, s, ctx))
            steps[f"{spec.name}: encode {spec.format}"] = (c, w)
        c, w, _ = timed(lambda: render(image, specs, context=ctx))
        steps["render (in-process total)"] = (c, w)
        return steps

    one_pass()  # warm-up
    order: list[str] = []
    for _ in range(max(repeat, 1)):
        steps = one_pass()
        order = list(steps)
        for step, (c, w) in steps.items():
            note(step, c, w)
    med = {step: {k: statistics.median(v) for k, v in samples[step].items()} for step in order}
    # Paired: render and floor alternate in this one process (which goes first
    # alternates too), so load from other processes hits both alike; the figure is
    # the median of the per-pair ratios.
    shrink, finals = _floor_setup(image, specs, ctx)
    pairs: dict[str, list[float]] = {"cpu": [], "wall": []}
    for i in range(2 * max(repeat, 1)):
        runs = [
            ("render", lambda: render(image, specs, context=ctx)),
            ("floor", lambda: _floor_once(image, shrink, finals, specs, ctx)),
        ]
        got = {name: timed(fn)[:2] for name, fn in (runs if i % 2 else runs[::-1])}
        pairs["cpu"].append(got["render"][0] / got["floor"][0])
        pairs["wall"].append(got["render"][1] / got["floor"][1])
    paired: dict[str, float] = {k: statistics.median(v) for k, v in pairs.items()}
    paired["n"] = len(pairs["cpu"])
    return {"steps": med, "order": order, "paired": paired, "peak_rss_kb": _peak_kb()}


WORKERS = {
    "darkroom": worker_darkroom,
    "floor": worker_floor,
    "pillow": worker_pillow,
    "profile": worker_profile,
}


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
        f"  darkroom/floor {_ratio(row, 'darkroom')}  sharp/floor {_ratio(row, 'sharp')}",
        flush=True,
    )


def _ratio(row: dict[str, Any], engine: str) -> str:
    """``engine``'s time over the floor's, CPU and wall, as printed."""
    cpu = row[engine]["cpu"] / row["floor"]["cpu"]
    wall = row[engine]["wall"] / row["floor"]["wall"]
    return f"{cpu:.2f}x cpu / {wall:.2f}x wall"


def build_36mp(directory: Path) -> Path:
    """Write a 7360×4912 camera-like JPEG made from the 22 MP Canon photo; return its path.

    libvips Lanczos 3 upscale, ``jpegsave`` Q=92 (libvips turns chroma subsampling off
    at Q ≥ 90), EXIF and ICC of the camera file kept. Runs in a subprocess so this
    process never loads libvips.
    """
    out = directory / "camera_36mp_7360x4912.jpg"
    code = (
        "import sys, pyvips\n"
        "src = pyvips.Image.new_from_file(sys.argv[1])\n"
        "w, h = int(sys.argv[3]), int(sys.argv[4])\n"
        "big = src.resize(w / src.width, vscale=h / src.height, kernel='lanczos3')\n"
        "big = big.crop(0, 0, w, h) if big.width >= w and big.height >= h else big\n"
        "big = big.embed(0, 0, w, h, extend='copy')\n"
        "big.jpegsave(sys.argv[2], Q=92)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(CAMERA_22MP), str(out), *map(str, SIZE_36MP)],
        check=True,
    )
    return out


def bench_steps(image: Path, repeat: int) -> dict[str, Any]:
    """Run :func:`worker_profile` single-threaded and with default threads; print a table."""
    runs = {}
    for threads, label in ((1, "1 thread"), (0, "default threads")):
        runs[label] = run_engine("profile", image, repeat, threads)
    order = runs["1 thread"]["order"]
    one, many = runs["1 thread"]["steps"], runs["default threads"]["steps"]
    total = one["render (in-process total)"]["cpu"]
    print(f"\nPer-step profile of Darkroom's render, {image.name} (median of {repeat}):")
    print(
        f"  {'step':52s} {'1 thread cpu':>12s} {'wall':>7s} {'default cpu':>12s} {'wall':>7s} {'% render':>8s}"
    )
    for step in order:
        a, b = one[step], many[step]
        share = f"{100 * a['cpu'] / total:7.1f}%" if step != "render (in-process total)" else ""
        print(
            f"  {step:52s} {a['cpu']:12.4f} {a['wall']:7.4f} {b['cpu']:12.4f} {b['wall']:7.4f} {share:>8s}"
        )
    sums = {}
    for label, run in runs.items():
        steps = run["steps"]
        parts = [k for k in steps if k != "render (in-process total)"]
        floor_parts = [k for k in parts if k.startswith("decode") or ": encode" in k]
        sums[label] = {
            kind: {
                "steps_sum": sum(steps[k][kind] for k in parts),
                "floor": sum(steps[k][kind] for k in floor_parts),
                "render": steps["render (in-process total)"][kind],
            }
            for kind in ("cpu", "wall")
        }
    for label, by_kind in sums.items():
        c, w = by_kind["cpu"], by_kind["wall"]
        print(
            f"  [{label}] steps sum {c['steps_sum']:.4f}s cpu ({w['steps_sum']:.4f}s wall); "
            f"floor steps (decode + encodes) {c['floor']:.4f}s cpu; render {c['render']:.4f}s cpu "
            f"= {c['render'] / c['floor']:.2f}x the floor steps"
        )
    for label, run in runs.items():
        pr = run["paired"]
        print(
            f"  [{label}] paired in one process ({pr['n']} alternating pairs): "
            f"darkroom/floor {pr['cpu']:.2f}x cpu / {pr['wall']:.2f}x wall"
        )
    return {"runs": runs, "sums": sums}


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
    parser.add_argument("--skip-giant", action="store_true")
    parser.add_argument("--only", action="append", help="image name substring (repeatable)")
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
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="darkroom-bench-") as tmp:
        big = build_36mp(Path(tmp))
        print(
            f"36 MP test file: {big.name} built in {tmp} from {CAMERA_22MP.name} "
            "(libvips Lanczos 3 upscale to 7360x4912, jpegsave Q=92, EXIF + ICC kept); "
            "the corpus has no 36 MP JPEG",
            flush=True,
        )
        images = [big, *sorted(p for p in CORPUS.glob("*.jpg") if p != GIANT)]
        if args.only:
            images = [p for p in images if any(o in p.name for o in args.only)]
        if big in images:
            report["steps_36mp"] = bench_steps(big, max(args.repeat, 5))
        report["profile"] = bench_profile(images, args.rounds, args.repeat)
    if not args.skip_avif:
        report["avif"] = bench_avif(CORPUS / "canon_5d3_22mp.jpg")
    if not args.skip_giant:
        giant = run_engine("darkroom", GIANT, 1, 0, profile="default", max_pixels=300_000_000)
        report["giant"] = {"wall": giant["wall"][0], "peak_rss_mb": giant["peak_rss_kb"] / 1024}
        print(
            f"\n280 MP JPEG, default profile, default threads: {giant['wall'][0]:.2f}s, "
            f"peak RSS {giant['peak_rss_kb'] / 1024:.0f} MB (target ≤ 300 MB)"
        )
    rows = [r for r in report["profile"] if r["image"].startswith("camera_36mp")]
    if rows:
        print(
            "\nFloor ratio, 36 MP camera JPEG, bench profile (target: Darkroom ≤ 1.15x the floor):"
        )
        paired = report["steps_36mp"]["runs"]
        for row in rows:
            pr = paired[row["threads"]]["paired"]
            print(
                f"  [{row['threads']}] darkroom/floor {_ratio(row, 'darkroom')} "
                f"(paired in one process: {pr['cpu']:.2f}x cpu / {pr['wall']:.2f}x wall); "
                f"sharp/floor {_ratio(row, 'sharp')}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
