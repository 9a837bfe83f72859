// Writes `count` scenes of the shipped U-Net's scene options (96 px, minSize 16, maxObjects 6) as raw bytes for
// train_unet.py: per scene 96*96*3 RGB bytes, then 96*96 class ids. Scene k is the one `iterateDataset` makes for
// index k of `split` under `seed` (hashSeed(seed, 'effdet-shapes', split, k)), so the demo's fresh validation
// scenes (split 'segment-fresh-val') come out exactly as `evaluateShapesUnet` sees them.
// usage (after `npm run build`): node gen.mjs OUT SEED SPLIT START COUNT
import { writeFileSync } from 'node:fs';
import { hashSeed } from '../../../packages/shapes/dist/rng.js';
import { generateScene, resolveSceneOptions } from '../../../packages/shapes/dist/scene.js';

const [out, seed, split, start, count] = process.argv.slice(2);
const opts = resolveSceneOptions({ width: 96, height: 96, minSize: 16, maxObjects: 6 });
const n = Number(count);
const rgbBytes = 96 * 96 * 3;
const per = rgbBytes + 96 * 96;
const buf = Buffer.alloc(n * per);
for (let i = 0; i < n; i++) {
  const s = generateScene(hashSeed(Number(seed), 'effdet-shapes', split, Number(start) + i), opts);
  buf.set(s.rgb, i * per);
  buf.set(s.semantic, i * per + rgbBytes);
}
writeFileSync(out, buf);
