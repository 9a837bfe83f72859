import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDictError } from '@effdet/layers';
import {
  availableBackends,
  closeReport,
  describeWithBackends,
  describeWithFixture,
  expectClose,
  expectNoLeaks,
  fixturePath,
  fixtureTensor,
  readFixture,
} from '@effdet/testing';
import { parseTfIndex } from '@effdet/weights';
import { loadWeights, openTfCheckpoint } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { createEfficientDet, type EfficientDet } from './model.js';
import { efficientDetTfToTorchNames, loadTfCheckpoint } from './tf_names.js';
import { loadRawStateDict } from './weights.js';

const D0_NAMES = 'tf_checkpoint/official_d0_variable_names.txt';
const D0_DIR = 'tf_checkpoint/efficientdet-d0';
const SMALL_DIR = 'tf_checkpoint/efficientdet-d0-smallblocks';
const IO = 'effdet/tf_efficientdet_d0_512.io.safetensors';

/** Official #params (millions, trainable, COCO 90 classes) as automl's counter reproduces them. */
const OFFICIAL_PARAMS_M: Record<string, number> = {
  tf_efficientdet_d0: 3.88,
  tf_efficientdet_d1: 6.63,
  tf_efficientdet_d2: 8.1,
  tf_efficientdet_d3: 12.03,
  tf_efficientdet_d4: 20.72,
  tf_efficientdet_d5: 33.65,
  tf_efficientdet_d6: 51.87,
  tf_efficientdet_d7: 51.87,
  tf_efficientdet_d7x: 77.15,
  tf_efficientdet_lite0: 3.24,
  tf_efficientdet_lite1: 4.25,
  tf_efficientdet_lite2: 5.25,
  tf_efficientdet_lite3: 8.35,
  tf_efficientdet_lite3x: 9.28,
  tf_efficientdet_lite4: 15.13,
};

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

describeWithFixture(D0_NAMES, 'EfficientDet-D0 official variable names', (path) => {
  it('maps every official name and covers every parameter and buffer of tf_efficientdet_d0', () => {
    // Each line is "NAME NAME" (the tutorial's "Init NAME from ckpt var NAME"); global_step included.
    const official = new Set(
      readFileSync(path, 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0])
        .filter(Boolean),
    );
    expect(official.size).toBe(707);
    const model = createEfficientDet('tf_efficientdet_d0');
    const maps = efficientDetTfToTorchNames(model);
    const ours = maps.flatMap((m) => m.tf);
    expect(new Set(ours).size).toBe(ours.length);
    const notOurs = [...official].filter((n) => !ours.includes(n));
    expect(notOurs).toEqual(['global_step']);
    // The log misses class-predict (its shape differed there); the checkpoint has 709 variables.
    expect(ours.filter((n) => !official.has(n)).sort()).toEqual([
      'class_net/class-predict/bias',
      'class_net/class-predict/depthwise_kernel',
      'class_net/class-predict/pointwise_kernel',
    ]);
    expect(ours).toHaveLength(709);
    expect(maps.map((m) => m.torch).sort()).toEqual(Object.keys(model.stateShapes()).sort());
    const byTorch = new Map(maps.map((m) => [m.torch, m]));
    expect(byTorch.get('fpn.cell.0.fnode.4.combine.edge_weights')?.tf).toEqual([
      'fpn_cells/cell_0/fnode4/WSM',
      'fpn_cells/cell_0/fnode4/WSM_1',
      'fpn_cells/cell_0/fnode4/WSM_2',
    ]);
    expect(byTorch.get('fpn.cell.0.fnode.3.combine.resample.0.conv.conv.weight')?.tf).toEqual([
      'fpn_cells/cell_0/fnode3/resample_0_0_8/conv2d/kernel',
    ]);
    expect(byTorch.get('fpn.cell.2.fnode.7.after_combine.conv.conv_dw.weight')?.tf).toEqual([
      'fpn_cells/cell_2/fnode7/op_after_combine12/conv/depthwise_kernel',
    ]);
    expect(byTorch.get('fpn.resample.3.conv.bn.running_var')?.tf).toEqual(['resample_p6/bn/moving_variance']);
    expect(byTorch.get('class_net.bn_rep.2.4.bn.weight')?.tf).toEqual(['class_net/class-2-bn-7/gamma']);
    expect(byTorch.get('box_net.predict.conv_pw.weight')).toMatchObject({
      tf: ['box_net/box-predict/pointwise_kernel'],
      tfShapes: [[1, 1, 64, 36]],
    });
  });
});

describe('EfficientDet TF names follow each configuration', () => {
  it('reproduces the official parameter counts of D0-D7x and Lite0-Lite4 from the derived names', () => {
    for (const [name, millions] of Object.entries(OFFICIAL_PARAMS_M)) {
      const model = createEfficientDet(name);
      const maps = efficientDetTfToTorchNames(model);
      const trainable = maps
        .filter((m) => !/\/moving_(mean|variance)$/.test(m.tf[0]))
        .reduce((n, m) => n + m.tfShapes.reduce((k, s) => k + numel(s), 0), 0);
      expect([name, Math.round(trainable / 1e4) / 100]).toEqual([name, millions]);
      expect(trainable).toBe(model.numParams());
    }
  });

  it('uses the level count, topology and fusion of the config', () => {
    const d7x = efficientDetTfToTorchNames('tf_efficientdet_d7x').flatMap((m) => m.tf);
    // Six levels (P3-P8): 10 nodes, numFeats = 6 + node, resample_p6 only, sum fusion (no WSM).
    expect(d7x).toContain('fpn_cells/cell_7/fnode9/op_after_combine15/conv/pointwise_kernel');
    expect(d7x).toContain('fpn_cells/cell_0/fnode2/resample_0_2_8/conv2d/kernel');
    expect(d7x).toContain('class_net/class-4-bn-8/gamma');
    expect(d7x).toContain('efficientnet-b7/blocks_54/conv2d_1/kernel');
    expect(d7x.some((n) => n.includes('WSM'))).toBe(false);
    expect(d7x.some((n) => n.startsWith('resample_p7/'))).toBe(false);
    const lite = efficientDetTfToTorchNames('tf_efficientdet_lite0').flatMap((m) => m.tf);
    expect(lite.some((n) => n.includes('WSM') || n.includes('/se/'))).toBe(false);
    expect(lite).toContain('efficientnet-lite0/blocks_15/tpu_batch_normalization_2/moving_mean');
    const d3 = efficientDetTfToTorchNames('tf_efficientdet_d3').flatMap((m) => m.tf);
    expect(d3).toContain('fpn_cells/cell_5/fnode6/WSM_2');
    expect(d3).toContain('box_net/box-3-bn-7/moving_variance');
    expect(d3.some((n) => n.startsWith('fpn_cells/cell_6/'))).toBe(false);
  });
});

/** Every parameter / buffer equal bit for bit. */
function sameWeights(a: EfficientDet, b: EfficientDet): string[] {
  const other = new Map(b.namedState());
  const diff: string[] = [];
  for (const [name, p] of a.namedState()) {
    const x = p.value.dataSync();
    const y = other.get(name)?.value.dataSync();
    if (!y || x.length !== y.length || x.some((v, i) => !Object.is(v, y[i]))) diff.push(name);
  }
  return diff;
}

describeWithFixture(D0_DIR, 'official EfficientDet-D0 TF checkpoint', (d0Dir) => {
  const smallSrc = fixturePath(SMALL_DIR);
  const ioPath = fixturePath(IO);
  let smallDir = '';
  beforeAll(() => {
    if (!smallSrc || !ioPath) throw new Error(`fixtures ${SMALL_DIR} and ${IO} are needed`);
    // The smallblocks index shares the data shard of efficientdet-d0/: put a link to it beside a copy.
    smallDir = mkdtempSync(join(tmpdir(), 'effdet-d0-smallblocks-'));
    copyFileSync(join(smallSrc, 'model.index'), join(smallDir, 'model.index'));
    copyFileSync(join(smallSrc, 'checkpoint'), join(smallDir, 'checkpoint'));
    symlinkSync(join(d0Dir, 'model.data-00000-of-00001'), join(smallDir, 'model.data-00000-of-00001'));
    expect(parseTfIndex(readFileSync(join(smallDir, 'model.index'))).dataBlocks).toBe(17);
  });
  afterAll(() => {
    if (smallDir) rmSync(smallDir, { recursive: true, force: true });
  });

  async function load(dir: string, options: { ema?: boolean } = {}): Promise<EfficientDet> {
    const model = createEfficientDet('tf_efficientdet_d0');
    const reader = await openTfCheckpoint(dir);
    try {
      const res = await loadTfCheckpoint(model, reader, options);
      expect(Object.keys(res.sources)).toHaveLength(Object.keys(model.stateShapes()).length);
      expect(res.unused).toEqual([]);
    } finally {
      await reader.close();
    }
    return model.eval();
  }

  // The cpu backend needs minutes per D0 forward on small machines: the EMA counter-check runs on one backend.
  const backends = availableBackends();
  const emaCheckBackend = backends.includes('wasm') ? 'wasm' : backends[0];

  describeWithBackends('class and box outputs', (backend) => {
    // The forward runs on one backend (minutes on cpu); the other checks the loaded weights equal the
    // reference state dict exactly, so the cpu parity of that state (effdet parity tests) carries over.
    if (backend !== emaCheckBackend) {
      it('the EMA values equal the reference tf_efficientdet_d0_s1 weights', async () => {
        const model = await load(d0Dir);
        const ref = createEfficientDet('tf_efficientdet_d0');
        loadRawStateDict(
          ref,
          await loadWeights(join(ioPath as string, '..', 'tf_efficientdet_d0_s1.weights.safetensors')),
        );
        expect(sameWeights(model, ref)).toEqual([]);
        ref.dispose();
        model.dispose();
      });
      return;
    }
    it('efficientdet-d0/ and efficientdet-d0-smallblocks/ load the same weights and reproduce class.i / box.i', async () => {
      const model = await load(smallDir);
      const plain = await load(d0Dir);
      expect(sameWeights(model, plain)).toEqual([]);
      plain.dispose();
      const io = readFixture(ioPath as string);
      const input = fixtureTensor(io, 'input');
      await expectNoLeaks(() => {
        const out = model.forward(input);
        for (const [i, t] of out.classOut.entries()) {
          const ref = fixtureTensor(io, `class.${i}`);
          expectClose(t, ref, 1e-3, `class.${i}`);
          ref.dispose();
        }
        for (const [i, t] of out.boxOut.entries()) {
          const ref = fixtureTensor(io, `box.${i}`);
          expectClose(t, ref, 1e-3, `box.${i}`);
          ref.dispose();
        }
        expect(out.classOut).toHaveLength(5);
        tf.dispose([...out.classOut, ...out.boxOut]);
      }, 'forward');
      input.dispose();
      model.dispose();
    });

    if (backend === emaCheckBackend) {
      it('with ema: false (the perturbed raw copies) the outputs do not match', async () => {
        const model = await load(d0Dir, { ema: false });
        const io = readFixture(ioPath as string);
        const input = fixtureTensor(io, 'input');
        const out = model.forward(input);
        const reports = [...out.classOut, ...out.boxOut].map((t, i) => {
          const name = i < 5 ? `class.${i}` : `box.${i - 5}`;
          const ref = fixtureTensor(io, name);
          const r = closeReport(t, ref, 1e-3);
          ref.dispose();
          return r;
        });
        expect(reports.filter((r) => !r.ok).length).toBeGreaterThanOrEqual(5);
        tf.dispose([input, ...out.classOut, ...out.boxOut]);
        model.dispose();
      });
    }
  });

  it('refuses a wrong model with one error listing the mismatches, loading nothing', async () => {
    const reader = await openTfCheckpoint(d0Dir);
    try {
      const d1 = createEfficientDet('tf_efficientdet_d1');
      const err = await loadTfCheckpoint(d1, reader).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateDictError);
      const e = err as StateDictError;
      expect(e.message).toMatch(/^loadTfCheckpoint: the checkpoint does not match EfficientDet/);
      expect(e.missing).toContain('efficientnet-b1/stem/conv2d/kernel (for backbone.conv_stem.weight)');
      expect(e.missing).toContain(
        'fpn_cells/cell_3/fnode0/WSM (for fpn.cell.3.fnode.0.combine.edge_weights)',
      );
      expect(e.unexpected).toContain('efficientnet-b0/stem/conv2d/kernel');
      expect(e.mismatched.map((m) => m.name)).toContain(
        'resample_p6/conv2d/kernel/ExponentialMovingAverage (for fpn.resample.3.conv.conv.weight)',
      );
      expect(d1.backbone.conv_stem.weight.allocated).toBe(false);

      // Same architecture, another class count: exactly the class prediction conv is mis-shaped.
      const d0c20 = createEfficientDet('tf_efficientdet_d0', { numClasses: 20 });
      const err2 = (await loadTfCheckpoint(d0c20, reader).catch((x: unknown) => x)) as StateDictError;
      expect(err2).toBeInstanceOf(StateDictError);
      expect(err2.missing).toEqual([]);
      expect(err2.unexpected).toEqual([]);
      expect(err2.mismatched).toEqual([
        {
          name: 'class_net/class-predict/pointwise_kernel/ExponentialMovingAverage (for class_net.predict.conv_pw.weight)',
          expected: [1, 1, 64, 180],
          got: [1, 1, 64, 810],
        },
        {
          name: 'class_net/class-predict/bias/ExponentialMovingAverage (for class_net.predict.conv_pw.bias)',
          expected: [180],
          got: [810],
        },
      ]);
      expect(err2.message).toContain(
        'mis-shaped: class_net/class-predict/bias/ExponentialMovingAverage (for class_net.predict.conv_pw.bias) expected [180] got [810]',
      );
    } finally {
      await reader.close();
    }
  });
});
