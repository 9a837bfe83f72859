// A U-Net folder with its decoder grown to DECODER_CHANNELS without changing its output (`growUnetDecoder`, as
// `effdet train --grow-decoder`), written as a TF.js folder train_unet.py can start from. usage (after `npm run
// build`): node grow.mjs SRC_DIR OUT_DIR DECODER_CHANNELS
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSegmentationModel } from '@effdet/segmentation/node';
import { openWeights } from '@effdet/weights/node';
import { growUnetDecoder } from '../../../tools/cli/dist/grow_decoder.js';
import { exportSegmentationModel } from '../../../tools/cli/dist/train_segment.js';

await tf.setBackend('cpu');
const [src, out, dec] = process.argv.slice(2);
const options = { decoderChannels: dec.split(',').map(Number) };
const reader = await openWeights(src);
const raw = await reader.readAll();
await reader.close();
const shape = await loadSegmentationModel('unet:tu-effdet_test_efficientnet', { classes: 7, options });
const grown = growUnetDecoder(raw, shape);
shape.dispose();
const model = await loadSegmentationModel('unet:tu-effdet_test_efficientnet', {
  weights: grown.raw,
  classes: 7,
  options,
});
const labels = JSON.parse(readFileSync(join(src, 'labels.json'), 'utf8'));
console.log(`${grown.grown.length} tensors grown;`, await exportSegmentationModel(out, model, labels));
