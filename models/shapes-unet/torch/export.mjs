// A safetensors file from train_unet.py -> a shipped-model folder (TF.js float16 + smp config + labels.json), as
// `effdet train --task segment` writes it. usage (after `npm run build`):
//   node export.mjs SRC.safetensors OUT_DIR DECODER_CHANNELS ['{"extra":"metadata"}']
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadSegmentationModel } from '@effdet/segmentation/node';
import { exportSegmentationModel } from '../../../tools/cli/dist/train_segment.js';

await tf.setBackend('cpu');
const [src, out, dec, extra] = process.argv.slice(2);
const model = await loadSegmentationModel('unet:tu-effdet_test_efficientnet', {
  weights: src,
  classes: 7,
  options: { decoderChannels: dec.split(',').map(Number) },
});
const labels = JSON.parse(readFileSync(new URL('../labels.json', import.meta.url), 'utf8'));
console.log(await exportSegmentationModel(out, model, labels, JSON.parse(extra ?? '{}')));
