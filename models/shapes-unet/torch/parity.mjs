// The parity check of train_unet.py's network against @effdet/segmentation: logits of a U-Net folder for a raw
// float32 NHWC input (compare with `python3 train_unet.py parity`). usage (after `npm run build`):
//   node parity.mjs DIR IN.bin OUT.bin H W
import { readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadSegmentationModel } from '@effdet/segmentation/node';

await tf.setBackend('cpu');
const [dir, inp, out, h, w] = process.argv.slice(2);
const model = await loadSegmentationModel(dir);
const bytes = readFileSync(inp);
const x = tf.tensor4d(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), [1, +h, +w, 3]);
const y = model.forwardLogits(x);
writeFileSync(out, Buffer.from((await y.data()).buffer));
console.log('effdet-ts logits', y.shape);
