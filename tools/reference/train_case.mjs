// Dumps the training case of tools/cli/src/train_case.ts for tools/reference/torch_train_trajectory.py:
//   npm run build && node tools/reference/train_case.mjs OUTDIR
// writes OUTDIR/init.safetensors (PyTorch state_dict names and layout), OUTDIR/data.f32, OUTDIR/labels.i32,
// OUTDIR/case.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { fromTfTensors } from '@effdet/weights';
import { writeSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { TRAIN_CASE, trainCaseData, trainCaseModel } from '../cli/dist/train_case.js';

const out = process.argv[2];
if (!out) throw new Error('usage: node tools/reference/train_case.mjs OUTDIR');
mkdirSync(out, { recursive: true });
await tf.setBackend('cpu');
const model = trainCaseModel();
const sd = model.stateDict();
await writeSafetensorsFile(join(out, 'init.safetensors'), await fromTfTensors(sd), {});
tf.dispose(Object.values(sd));
const { pixels, labels } = trainCaseData();
writeFileSync(join(out, 'data.f32'), Buffer.from(pixels.buffer));
writeFileSync(join(out, 'labels.i32'), Buffer.from(labels.buffer));
writeFileSync(join(out, 'case.json'), `${JSON.stringify(TRAIN_CASE)}\n`);
console.log(`wrote ${out}: ${labels.length} images`);
