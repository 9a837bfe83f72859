import { readFileSync } from 'node:fs';
import { StateDictError } from '@effdet/layers';
import {
  availableBackends,
  describeWithFixture,
  expectClose,
  fixturePath,
  fixtureTensor,
  fixtureTensors,
  readFixture,
} from '@effdet/testing';
import { openTfCheckpoint } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import type { EfficientNet } from './model.js';
import { createModel } from './registry.js';
import {
  efficientNetTfScope,
  isTfTrainingStateName,
  loadTfCheckpointIntoEfficientNet,
  type TfVariableReader,
  tfToTorchNames,
} from './tf_names.js';

interface FakeVar {
  dtype: string;
  shape: number[];
  values: Float32Array;
}

/** An in-memory checkpoint reader (float32 little-endian), shaped like `@effdet/weights` readers. */
function fakeReader(vars: Map<string, FakeVar>): TfVariableReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    entries: [...vars].map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape })),
    async read(name: string) {
      const v = vars.get(name);
      if (!v) throw new Error(`fakeReader: no '${name}'`);
      reads.push(name);
      const data = new Uint8Array(v.values.length * 4);
      new Float32Array(data.buffer).set(v.values);
      return { dtype: v.dtype, shape: v.shape, data };
    },
  };
}

/** A model's current weights under their official TF names (TF layout == our TF.js layout). */
function exportTf(model: EfficientNet, rename: (n: string) => string = (n) => n): Map<string, FakeVar> {
  const byTorch = new Map(model.namedState());
  const out = new Map<string, FakeVar>();
  for (const m of tfToTorchNames(model)) {
    const p = byTorch.get(m.torch);
    if (!p) throw new Error(`exportTf: ${m.torch} is not in the model`);
    out.set(rename(m.tf[0]), {
      dtype: 'float32',
      shape: m.tfShapes[0],
      values: p.value.dataSync() as Float32Array,
    });
  }
  return out;
}

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * Runs `fn` on one backend: wasm when registered (the cpu backend needs minutes for these full-size forward
 * passes on small CI machines; the EfficientDet checkpoint test covers both backends), restoring cpu after.
 */
function describeOnFastBackend(name: string, fn: () => void): void {
  const backends = availableBackends();
  const backend = backends.includes('wasm') ? 'wasm' : backends[0];
  describe(`${name} [${backend}]`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
      await tf.ready();
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });
    fn();
  });
}

/** Every official EfficientNet backbone: total block count (automl round_repeats, see the reference doc). */
const BLOCKS: Record<string, number> = {
  tf_efficientnet_b0: 16,
  tf_efficientnet_b1: 23,
  tf_efficientnet_b2: 23,
  tf_efficientnet_b3: 26,
  tf_efficientnet_b4: 32,
  tf_efficientnet_b5: 39,
  tf_efficientnet_b6: 45,
  tf_efficientnet_b7: 55,
  tf_efficientnet_lite0: 16,
  tf_efficientnet_lite1: 21,
  tf_efficientnet_lite2: 21,
  tf_efficientnet_lite3: 24,
  tf_efficientnet_lite4: 30,
};

describe('EfficientNet official TF names', () => {
  it('derives the TF scope from registered names', () => {
    expect(efficientNetTfScope('tf_efficientnet_b0')).toBe('efficientnet-b0');
    expect(efficientNetTfScope('efficientnet_b3')).toBe('efficientnet-b3');
    expect(efficientNetTfScope('tf_efficientnet_b3_ap')).toBe('efficientnet-b3');
    expect(efficientNetTfScope('tf_efficientnet_lite4')).toBe('efficientnet-lite4');
    expect(efficientNetTfScope('tf_efficientnet_l2')).toBe('efficientnet-l2');
    expect(efficientNetTfScope('tf_efficientnetv2_s')).toBeNull();
    expect(() => tfToTorchNames('tf_efficientnetv2_b0')).toThrow(/TF scope/);
  });

  it('covers every state entry of tf_efficientnet_b0 with the official names', () => {
    const model = createModel('tf_efficientnet_b0');
    const maps = tfToTorchNames(model);
    const shapes = model.stateShapes();
    expect(maps.map((m) => m.torch).sort()).toEqual(Object.keys(shapes).sort());
    const tf = new Map(maps.map((m) => [m.tf[0], m]));
    expect(tf.size).toBe(maps.length);
    // Stem, the DS block (no expansion: one conv and one BN fewer), an IR block, the head.
    const expect1 = (name: string, torch: string, shape: number[]) => {
      const m = tf.get(`efficientnet-b0/${name}`);
      expect(m?.torch).toBe(torch);
      expect(m?.tfShapes[0]).toEqual(shape);
    };
    expect1('stem/conv2d/kernel', 'conv_stem.weight', [3, 3, 3, 32]);
    expect1('stem/tpu_batch_normalization/moving_variance', 'bn1.running_var', [32]);
    expect1('blocks_0/depthwise_conv2d/depthwise_kernel', 'blocks.0.0.conv_dw.weight', [3, 3, 32, 1]);
    expect1('blocks_0/tpu_batch_normalization/gamma', 'blocks.0.0.bn1.weight', [32]);
    expect1('blocks_0/se/conv2d/kernel', 'blocks.0.0.se.conv_reduce.weight', [1, 1, 32, 8]);
    expect1('blocks_0/se/conv2d_1/bias', 'blocks.0.0.se.conv_expand.bias', [32]);
    expect1('blocks_0/conv2d/kernel', 'blocks.0.0.conv_pw.weight', [1, 1, 32, 16]);
    expect1('blocks_0/tpu_batch_normalization_1/beta', 'blocks.0.0.bn2.bias', [16]);
    expect1('blocks_2/conv2d/kernel', 'blocks.1.1.conv_pw.weight', [1, 1, 24, 144]);
    expect1('blocks_2/tpu_batch_normalization/moving_mean', 'blocks.1.1.bn1.running_mean', [144]);
    expect1('blocks_2/depthwise_conv2d/depthwise_kernel', 'blocks.1.1.conv_dw.weight', [3, 3, 144, 1]);
    expect1('blocks_2/tpu_batch_normalization_1/gamma', 'blocks.1.1.bn2.weight', [144]);
    expect1('blocks_2/se/conv2d/kernel', 'blocks.1.1.se.conv_reduce.weight', [1, 1, 144, 6]);
    expect1('blocks_2/conv2d_1/kernel', 'blocks.1.1.conv_pwl.weight', [1, 1, 144, 24]);
    expect1('blocks_2/tpu_batch_normalization_2/beta', 'blocks.1.1.bn3.bias', [24]);
    expect1('blocks_15/conv2d_1/kernel', 'blocks.6.0.conv_pwl.weight', [1, 1, 1152, 320]);
    expect1('head/conv2d/kernel', 'conv_head.weight', [1, 1, 320, 1280]);
    expect1('head/tpu_batch_normalization/gamma', 'bn2.weight', [1280]);
    expect1('head/dense/kernel', 'classifier.weight', [1280, 1000]);
    expect1('head/dense/bias', 'classifier.bias', [1000]);
    // TF layout == TF.js layout: the mapped shape is our parameter's TF.js shape.
    for (const m of maps) expect(m.tfShapes[0]).toEqual(m.shape);
  });

  it('covers tf_efficientnet_lite0 (no SE) and numbers blocks globally in every variant', () => {
    const lite = tfToTorchNames('tf_efficientnet_lite0', { torchPrefix: 'net.' });
    expect(lite.some((m) => m.tf[0].includes('/se/'))).toBe(false);
    expect(lite.every((m) => m.tf[0].startsWith('efficientnet-lite0/') && m.torch.startsWith('net.'))).toBe(
      true,
    );
    expect(lite.map((m) => m.torch.slice(4)).sort()).toEqual(
      Object.keys(createModel('tf_efficientnet_lite0').stateShapes()).sort(),
    );
    for (const [name, blocks] of Object.entries(BLOCKS)) {
      const maps = tfToTorchNames(createModel(name, { featuresOnly: true }));
      const ids = new Set(maps.flatMap((m) => /\/blocks_(\d+)\//.exec(m.tf[0])?.[1] ?? []));
      expect([name, ids.size]).toEqual([name, blocks]);
      expect(ids.has(String(blocks - 1))).toBe(true);
      // The stem is not scaled in lite models.
      expect(maps[0].tfShapes[0][3]).toBe(
        name.includes('lite') ? 32 : ({ b3: 40, b4: 48, b5: 48, b6: 56, b7: 64 }[name.slice(-2)] ?? 32),
      );
    }
    const alt = tfToTorchNames('tf_efficientnet_b0', { bnName: 'batch_normalization', tfPrefix: 'x' });
    expect(alt.find((m) => m.torch === 'bn2.running_mean')?.tf).toEqual([
      'x/head/batch_normalization/moving_mean',
    ]);
  });

  it('ignores optimizer slots and global_step only', () => {
    for (const n of ['global_step', 'a/b/Momentum', 'a/Adam', 'a/Adam_1', 'a/RMSProp', 'a/RMSProp_1']) {
      expect(isTfTrainingStateName(n)).toBe(true);
    }
    for (const n of ['a/b/kernel', 'a/Momentum/kernel', 'a/ExponentialMovingAverage', 'global_steps']) {
      expect(isTfTrainingStateName(n)).toBe(false);
    }
  });
});

describe('loadTfCheckpointIntoEfficientNet (in-memory checkpoints)', () => {
  it('prefers EMA copies, accepts either BN spelling, skips slots, and reports every problem', async () => {
    const src = createModel('tf_efficientnet_lite0', { featuresOnly: true });
    const vars = exportTf(src, (n) => n.replace('tpu_batch_normalization', 'batch_normalization'));
    // Raw copies are perturbed; EMA copies hold the real values.
    for (const [name, v] of [...vars]) {
      vars.set(`${name}/ExponentialMovingAverage`, v);
      vars.set(name, { ...v, values: v.values.map((x) => x + 1) });
      vars.set(`${name}/Momentum`, { ...v, values: v.values.map(() => Number.NaN) });
    }
    vars.set('global_step', { dtype: 'int64', shape: [], values: new Float32Array(2) });
    // Classification head of a classifier checkpoint: ignored by a feature extractor.
    vars.set('efficientnet-lite0/head/conv2d/kernel', {
      dtype: 'float32',
      shape: [1, 1, 320, 1280],
      values: new Float32Array(320 * 1280),
    });

    const dst = createModel('tf_efficientnet_lite0', { featuresOnly: true });
    const reader = fakeReader(vars);
    const res = await loadTfCheckpointIntoEfficientNet(dst, reader);
    expect(reader.reads.every((n) => n.endsWith('/ExponentialMovingAverage'))).toBe(true);
    expect(res.sources['blocks.0.0.bn1.weight']).toEqual([
      'efficientnet-lite0/blocks_0/batch_normalization/gamma/ExponentialMovingAverage',
    ]);
    const want = new Map(src.namedState());
    const differing = dst
      .namedState()
      .filter(([name, p]) => !sameValues(p.value.dataSync(), want.get(name)!.value.dataSync()))
      .map(([name]) => name);
    expect(differing).toEqual([]);
    // ema: false reads the raw copies.
    const raw = createModel('tf_efficientnet_lite0', { featuresOnly: true });
    await loadTfCheckpointIntoEfficientNet(raw, fakeReader(vars), { ema: false });
    const w = raw.conv_stem.weight.value.dataSync();
    const w0 = src.conv_stem.weight.value.dataSync();
    expect(w[0]).toBeCloseTo(w0[0] + 1, 5);

    // Missing, mis-shaped and unexpected variables are listed together; nothing is loaded.
    const broken = new Map(vars);
    broken.delete('efficientnet-lite0/blocks_3/conv2d/kernel');
    broken.delete('efficientnet-lite0/blocks_3/conv2d/kernel/ExponentialMovingAverage');
    broken.set('efficientnet-lite0/stem/conv2d/kernel/ExponentialMovingAverage', {
      dtype: 'float32',
      shape: [3, 3, 3, 16],
      values: new Float32Array(432),
    });
    broken.set('efficientnet-lite0/blocks_99/conv2d/kernel', {
      dtype: 'float32',
      shape: [1],
      values: new Float32Array(1),
    });
    const fresh = createModel('tf_efficientnet_lite0', { featuresOnly: true });
    const err = await loadTfCheckpointIntoEfficientNet(fresh, fakeReader(broken)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateDictError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/1 missing, 1 unexpected, 1 mis-shaped/);
    expect(msg).toContain('efficientnet-lite0/blocks_3/conv2d/kernel (for blocks.2.0.conv_pw.weight)');
    expect(msg).toContain('efficientnet-lite0/blocks_99/conv2d/kernel');
    expect(msg).toMatch(
      /mis-shaped: efficientnet-lite0\/stem\/conv2d\/kernel\/ExponentialMovingAverage .* expected \[3,3,3,32\] got \[3,3,3,16\]/,
    );
    expect(fresh.conv_stem.weight.allocated).toBe(false);
    // strict: false tolerates the unexpected variable (the others still fail).
    broken.set(
      'efficientnet-lite0/blocks_3/conv2d/kernel',
      vars.get('efficientnet-lite0/blocks_3/conv2d/kernel')!,
    );
    broken.set(
      'efficientnet-lite0/stem/conv2d/kernel/ExponentialMovingAverage',
      vars.get('efficientnet-lite0/stem/conv2d/kernel/ExponentialMovingAverage')!,
    );
    const ok = await loadTfCheckpointIntoEfficientNet(fresh, fakeReader(broken), { strict: false });
    expect(ok.unused).toEqual(['efficientnet-lite0/blocks_99/conv2d/kernel']);
    src.dispose();
    dst.dispose();
    raw.dispose();
    fresh.dispose();
  });
});

describeWithFixture(
  'efficientnet/tf_efficientnet_b0_cls_224.io.safetensors',
  'tf_efficientnet_b0 classifier through official TF names',
  (ioPath) => {
    describeOnFastBackend('logits', () => {
      it('round-trips timm weights through a TF-named checkpoint (head/conv2d, head/dense included)', async () => {
        const io = readFixture(ioPath);
        const weights = readFixture(
          ioPath.replace('tf_efficientnet_b0_cls_224.io', `${io.metadata.weights}.weights`),
        );
        const src = createModel('tf_efficientnet_b0');
        const tensors = fixtureTensors(weights);
        src.loadStateDict(tensors);
        tf.dispose(Object.values(tensors));
        const dst = createModel('tf_efficientnet_b0');
        await loadTfCheckpointIntoEfficientNet(dst, fakeReader(exportTf(src)));
        dst.eval();
        const input = fixtureTensor(io, 'input');
        const expected = fixtureTensor(io, 'logits');
        const logits = dst.forward(input);
        expectClose(logits, expected, 1e-3, 'logits');
        tf.dispose([input, expected, logits]);
        src.dispose();
        dst.dispose();
      });
    });
  },
);

const D0_NAMES = 'tf_checkpoint/official_d0_variable_names.txt';
describeWithFixture(D0_NAMES, 'EfficientNet-B0 names against the official EfficientDet-D0 list', (path) => {
  it('maps exactly the official efficientnet-b0/ variables of a feature extractor', () => {
    const official = readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((n) => n?.startsWith('efficientnet-b0/'));
    const maps = tfToTorchNames(
      createModel('tf_efficientnet_b0', { featuresOnly: true, outIndices: [2, 3, 4] }),
    );
    expect(maps.map((m) => m.tf[0]).sort()).toEqual([...new Set(official)].sort());
  });
});

const D0_CKPT = 'tf_checkpoint/efficientdet-d0';
describeWithFixture(
  D0_CKPT,
  'EfficientNet-B0 loaded from the backbone of the official D0 checkpoint',
  (dir) => {
    const ioPath = fixturePath('effdet/tf_efficientdet_d0_512.io.safetensors');
    describeOnFastBackend('backbone features match effdet', () => {
      it('reproduces backbone.0..2 of tf_efficientdet_d0_512', async () => {
        if (!ioPath) throw new Error('fixture effdet/tf_efficientdet_d0_512.io.safetensors is missing');
        const reader = await openTfCheckpoint(dir);
        const model = createModel('tf_efficientnet_b0', { featuresOnly: true, outIndices: [2, 3, 4] });
        try {
          const res = await loadTfCheckpointIntoEfficientNet(model, reader);
          expect(Object.keys(res.sources)).toHaveLength(Object.keys(model.stateShapes()).length);
        } finally {
          await reader.close();
        }
        model.eval();
        const io = readFixture(ioPath);
        const input = fixtureTensor(io, 'input');
        const feats = model.features(input);
        expect(feats).toHaveLength(3);
        for (const [i, f] of feats.entries()) {
          const ref = fixtureTensor(io, `backbone.${i}`);
          expectClose(f, ref, 1e-3, `backbone.${i}`);
          ref.dispose();
        }
        tf.dispose([input, ...feats]);
        model.dispose();
      });
    });
  },
);
