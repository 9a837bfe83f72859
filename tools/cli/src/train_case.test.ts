/**
 * The training stack against PyTorch, step for step: the same initial weights, data, loss and AdamW settings
 * (tools/cli/src/train_case.ts), 40 steps in train mode. The reference losses were computed once by hand with
 * tools/reference/torch_train_trajectory.py (PyTorch 1.13, @effdet/efficientnet's effdet_test_efficientnet written out with timm's
 * names) and committed in tools/cli/testdata/train_case_torch.json. Gradients of every kernel, BatchNorm's
 * batch statistics, the squeeze-excite path and the optimiser all enter these numbers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Optimizer, registerTrainingKernels, trainableVariables } from '@effdet/layers';
import * as tf from '@tensorflow/tfjs-core';
import { TRAIN_CASE, trainCaseData, trainCaseModel } from './train_case.js';

interface TorchTrajectory {
  case: typeof TRAIN_CASE;
  losses: number[];
  final: Record<string, number[]>;
  running: Record<string, number[]>;
}

const reference = JSON.parse(
  readFileSync(join(__dirname, '..', 'testdata', 'train_case_torch.json'), 'utf8'),
) as TorchTrajectory;

function run(steps: number): {
  losses: number[];
  final: Record<string, number[]>;
  running: Record<string, number[]>;
} {
  const model = trainCaseModel();
  model.train();
  const params = trainableVariables(model);
  const opt = new Optimizer(params, { name: 'adamw', weightDecay: TRAIN_CASE.weightDecay });
  const { pixels, labels } = trainCaseData();
  const { size: S, batch: B } = TRAIN_CASE;
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const x = tf.tidy(() =>
      tf.div(
        tf.sub(
          tf.div(tf.tensor4d(pixels.subarray(s * B * S * S * 3, (s + 1) * B * S * S * 3), [B, S, S, 3]), 255),
          [...TRAIN_CASE.mean],
        ),
        [...TRAIN_CASE.std],
      ),
    );
    const y = tf.tidy(() =>
      tf.oneHot(tf.tensor1d(labels.subarray(s * B, (s + 1) * B), 'int32'), TRAIN_CASE.classes),
    );
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(y, model.forward(x)) as tf.Scalar,
      params.map((p) => p.variable),
    );
    losses.push(value.dataSync()[0] as number);
    opt.apply(grads, TRAIN_CASE.lr);
    tf.dispose([value, ...Object.values(grads), x, y]);
  }
  const sd = model.stateDict();
  const pick = (names: string[]) =>
    Object.fromEntries(names.map((n) => [n, Array.from((sd[n] as tf.Tensor).dataSync().slice(0, 8))]));
  const out = {
    losses,
    final: pick(Object.keys(reference.final)),
    running: pick(Object.keys(reference.running)),
  };
  tf.dispose(Object.values(sd));
  opt.dispose();
  model.dispose();
  return out;
}

// The cpu backend runs far slower inside Jest's VM (its Math.* calls are 10-100x slower there): 40 steps took
// 50 minutes of CI. It replays the first 2 steps (the forward, the gradients and one AdamW update enter the losses);
// the final weights and running statistics are compared after the full 40 steps on wasm.
const CASES: [string, number][] = [
  ['wasm', TRAIN_CASE.steps],
  ['cpu', 2],
];

describe.each(CASES)('training matches PyTorch step for step (%s, %d steps)', (backend, steps) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    registerTrainingKernels();
    // TF.js' IS_TEST per-kernel leak check miscounts the saved-tensor clones of custom gradients on wasm
    tf.env().set('IS_TEST', false);
  });
  afterAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('cpu');
  });

  it(`AdamW steps of effdet_test_efficientnet in train mode: the losses (and after 40 steps the weights and running statistics)`, () => {
    expect(reference.case).toEqual(TRAIN_CASE);
    const before = tf.memory().numTensors;
    const ours = run(steps);
    expect(tf.memory().numTensors).toBe(before);
    expect(ours.losses).toHaveLength(steps);
    // float32 chaos grows with the steps: tight early, looser late, never drifting apart
    ours.losses.forEach((l, i) => {
      const ref = reference.losses[i] as number;
      const tol = i < 20 ? 1e-3 : 1e-2;
      if (Math.abs(l - ref) > tol * Math.abs(ref)) throw new Error(`step ${i}: loss ${l} vs PyTorch ${ref}`);
    });
    if (steps < TRAIN_CASE.steps) return;
    for (const group of ['final', 'running'] as const)
      for (const [name, ref] of Object.entries(reference[group])) {
        const got = ours[group][name] as number[];
        ref.forEach((r, k) => {
          const g = got[k] as number;
          if (Math.abs(g - r) > 2e-2 * Math.max(Math.abs(r), 1e-2))
            throw new Error(`${group} ${name}[${k}]: ${g} vs PyTorch ${r}`);
        });
      }
  });
});
