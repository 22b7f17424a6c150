// sharp baseline for bench/engine_bench.py: render the `bench` profile's specs from
// one file, one variant after the other, each from a fresh decode (sharp's usual
// per-output pipeline). Prints {"wall": [...], "cpu": [...], "peak_rss_kb": n} as JSON.
// Usage: node render.mjs FILE SPECS_JSON REPEAT THREADS(0 = default)
import sharp from "sharp";
import { readFileSync } from "node:fs";

const [file, specsJson, repeatArg, threadsArg] = process.argv.slice(2);
const specs = JSON.parse(readFileSync(specsJson, "utf8"));
const repeat = Number(repeatArg);
const threads = Number(threadsArg);
sharp.cache(false);
if (threads > 0) sharp.concurrency(threads);

async function once() {
  const sizes = {};
  for (const s of specs) {
    let p = sharp(file, { failOn: "error" })
      .rotate()
      .resize(s.width, s.height, {
        fit: s.fit === "fill" ? "fill" : s.fit,
        position: "centre",
        withoutEnlargement: true,
      });
    if (s.format === "jpeg") {
      p = p.jpeg({ quality: s.quality, progressive: false, chromaSubsampling: "4:2:0", optimiseCoding: true });
    } else if (s.format === "webp") {
      p = p.webp({ quality: s.quality, effort: s.effort ?? 4 });
    } else if (s.format === "avif") {
      p = p.avif({ quality: s.quality, effort: s.effort ?? 4 });
    }
    const { info } = await p.toBuffer({ resolveWithObject: true });
    sizes[s.name] = [info.width, info.height, info.size];
  }
  return sizes;
}

const wall = [], cpu = [];
let sizes = await once(); // warm-up: loads libvips modules
for (let i = 0; i < repeat; i++) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  sizes = await once();
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage(c0);
  wall.push(Number(t1 - t0) / 1e9);
  cpu.push((c1.user + c1.system) / 1e6);
}
console.log(JSON.stringify({ wall, cpu, peak_rss_kb: process.resourceUsage().maxRSS, sizes,
  libvips: sharp.versions.vips, concurrency: sharp.concurrency() }));
