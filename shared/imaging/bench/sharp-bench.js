// Drives sharp the way the image stage works: one decode per photo, then the three
// portrait renditions (480x600, 240x300, 96x120), EXIF auto-orientation, centre crop,
// Lanczos3, JPEG q85 4:2:0, no metadata. Single-threaded: sharp.concurrency(1) and one
// photo at a time. Run by imaging-bench: node sharp-bench.js OUT_DIR FILE...
// Prints one line: RESULT photos=N seconds=S hwm_kb=K (S: best of BENCH_PASSES passes)
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false);
sharp.simd(true);

const [outDir, ...files] = process.argv.slice(2);
const inputs = files.map((f) => ({ name: path.parse(f).name, data: fs.readFileSync(f) }));
const jpegOptions = { quality: 85, chromaSubsampling: '4:2:0', mozjpeg: false };

async function one(input) {
  // Decode once (shrink-on-load), orient, crop and resize to the largest rendition...
  const large = await sharp(input.data)
    .rotate()
    .resize(480, 600, { fit: 'cover', position: 'centre', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: large.info.width, height: large.info.height, channels: large.info.channels } };
  // ...then encode it and derive the smaller ones from it, as our fast path does.
  return Promise.all([
    sharp(large.data, raw).jpeg(jpegOptions).toBuffer(),
    sharp(large.data, raw).resize(240, 300, { kernel: 'lanczos3' }).jpeg(jpegOptions).toBuffer(),
    sharp(large.data, raw).resize(96, 120, { kernel: 'lanczos3' }).jpeg(jpegOptions).toBuffer(),
  ]);
}

async function main() {
  await one(inputs[0]); // warm-up
  // Best of BENCH_PASSES timed passes, like every engine in imaging-bench.
  const passes = Math.max(1, Number(process.env.BENCH_PASSES || 1));
  let outputs = [];
  let seconds = Infinity;
  for (let pass = 0; pass < passes; pass++) {
    outputs = [];
    const start = process.hrtime.bigint();
    for (const input of inputs) {
      outputs.push(await one(input));
    }
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
  }
  inputs.forEach((input, i) => {
    ['large', 'medium', 'small'].forEach((size, j) => {
      fs.writeFileSync(path.join(outDir, `${input.name}_${size}.jpg`), outputs[i][j]);
    });
  });
  const hwm = process.resourceUsage().maxRSS;
  console.log(`RESULT photos=${inputs.length} seconds=${seconds} hwm_kb=${hwm}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
