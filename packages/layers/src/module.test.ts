import {
  BatchNorm2d,
  Conv2d,
  ConvBnAct,
  ConvNormAct,
  DepthwiseSeparable,
  EdgeResidual,
  InvertedResidual,
  Linear,
  Module,
  SeparableConvNormAct,
  SqueezeExcite,
  StateDictError,
} from '@effdet/layers';
import { describeWithBackends, expectClose, expectNoLeaks, expectValues } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

class Tiny extends Module {
  readonly conv_dw = this.addModule('conv_dw', new Conv2d(2, 2, 3, { depthwise: true }));
  readonly bn1 = this.addModule('bn1', new BatchNorm2d(2));
  readonly conv = this.addModule('conv', new Conv2d(2, 3, 1, { bias: true }));
  readonly fc = this.addModule('fc', new Linear(3, 4));
}

function float16Bits(v: number): number {
  // Exact for the small integers used below.
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = (u >>> 13) & 0x3ff;
  return v === 0 ? sign : sign | (exp << 10) | mant;
}

describe('Module state dict', () => {
  it('names, PyTorch shapes and parameter count', () => {
    const m = new Tiny();
    expect(m.stateShapes()).toEqual({
      'conv_dw.weight': [2, 1, 3, 3],
      'bn1.weight': [2],
      'bn1.bias': [2],
      'bn1.running_mean': [2],
      'bn1.running_var': [2],
      'conv.weight': [3, 2, 1, 1],
      'conv.bias': [3],
      'fc.weight': [4, 3],
      'fc.bias': [4],
    });
    expect(m.numParams()).toBe(18 + 4 + 9 + 16);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['bn1.running_mean', 'bn1.running_var']);
  });

  it('round-trips stateDict -> loadStateDict and converts PyTorch layouts', async () => {
    const m = new Tiny();
    const w = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [2, 1, 3, 3]);
    const cw = tf.tensor4d([1, 2, 3, 4, 5, 6], [3, 2, 1, 1]);
    const fw = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [4, 3]);
    m.materialize(); // loading into allocated variables must not add tensors
    await expectNoLeaks(() => {
      m.loadStateDict({ 'conv_dw.weight': w, 'conv.weight': cw, 'fc.weight': fw }, { strict: false });
    }, 'loadStateDict');
    // depthwise [C,1,kh,kw] -> [kh,kw,C,1]: element [0,0,c,0] is w[c,0,0,0]
    expect(m.conv_dw.weight.value.shape).toEqual([3, 3, 2, 1]);
    expectValues(tf.slice(m.conv_dw.weight.value, [0, 0, 0, 0], [1, 1, 2, 1]), [1, 10]);
    // conv [out,in,1,1] -> [1,1,in,out]
    expectValues(m.conv.weight.value, [1, 3, 5, 2, 4, 6]);
    // linear [out,in] -> [in,out]
    expectValues(tf.slice(m.fc.weight.value, [0, 0], [1, 4]), [1, 4, 7, 10]);
    const sd = m.stateDict();
    expectValues(sd['conv_dw.weight'], Array.from(w.dataSync()));
    expectValues(sd['fc.weight'], Array.from(fw.dataSync()));
    const m2 = new Tiny();
    m2.loadStateDict(sd);
    const sd2 = m2.stateDict();
    for (const k of Object.keys(sd)) expectValues(sd2[k], Array.from(sd[k].dataSync()));
    tf.dispose([w, cw, fw, ...Object.values(sd), ...Object.values(sd2)]);
    m.dispose();
    m2.dispose();
  });

  it('accepts float16 raw data and tfjs layouts', () => {
    const m = new Linear(2, 1, { bias: false });
    m.loadStateDict({
      weight: { shape: [1, 2], dtype: 'float16', data: Uint16Array.from([float16Bits(3), float16Bits(-2)]) },
    });
    expectValues(m.weight.value, [3, -2]);
    m.loadStateDict({ weight: tf.tensor2d([5, 6], [2, 1]) }, { layout: 'tfjs' });
    expectValues(m.weight.value, [5, 6]);
    m.dispose();
  });

  it('one error lists every missing, unexpected and mis-shaped name; nothing changes', () => {
    const m = new Tiny();
    const before = Array.from(m.conv.bias!.value.dataSync());
    const bad = {
      'conv.bias': tf.ones([3]),
      'conv.weight': tf.zeros([3, 2, 3, 3]),
      'fc.wieght': tf.zeros([4, 3]),
      'bn1.num_batches_tracked': tf.scalar(3, 'int32'),
    };
    let err: StateDictError | null = null;
    try {
      m.loadStateDict(bad);
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.unexpected).toEqual(['fc.wieght']);
    expect(err!.mismatched).toEqual([{ name: 'conv.weight', expected: [3, 2, 1, 1], got: [3, 2, 3, 3] }]);
    expect(err!.missing).toContain('fc.weight');
    expect(err!.missing).toContain('bn1.running_var');
    expect(err!.message).toMatch(/mis-shaped: conv.weight expected \[3,2,1,1\] got \[3,2,3,3\]/);
    expect(err!.message).toMatch(/unexpected: fc.wieght/);
    expect(Array.from(m.conv.bias!.value.dataSync())).toEqual(before);
    // Non-strict still refuses shape mismatches (as PyTorch does).
    expect(() => m.loadStateDict(bad, { strict: false })).toThrow(/1 mis-shaped/);
    tf.dispose(Object.values(bad));
    m.dispose();
  });

  it('train()/eval() propagate; dispose frees every variable', () => {
    const m = new Tiny();
    m.materialize();
    m.train();
    expect(m.namedModules().every(([, c]) => c.training)).toBe(true);
    m.eval();
    expect(m.namedModules().some(([, c]) => c.training)).toBe(false);
    const n = tf.memory().numTensors;
    m.dispose();
    expect(tf.memory().numTensors).toBe(n - 9);
    expect(() => m.conv.weight.value).toThrow(/disposed/);
  });
});

describeWithBackends('blocks', () => {
  const act = 'swish';
  const makeBlocks = () => [
    new ConvBnAct(8, 8, 3, { act, skip: true, padding: 'same' }),
    new DepthwiseSeparable(8, 8, { act, seRatio: 0.25, dwKernelSize: 3 }),
    new InvertedResidual(8, 16, {
      act,
      seRatio: 0.25 / 4,
      midChannels: 32,
      stride: 2,
      dwKernelSize: 5,
      padding: 'same',
    }),
    new EdgeResidual(8, 8, { act, midChannels: 32, expKernelSize: 3 }),
    new ConvNormAct(8, 4, 1, { bias: true, act: 'relu' }),
    new SeparableConvNormAct(8, 4, 3, { bias: true, act: 'relu6', padding: 'same' }),
  ];

  it('names follow timm / effdet', () => {
    const [cn, ds, ir, er, cna, sep] = makeBlocks();
    expect(Object.keys(cn.stateShapes())).toEqual([
      'conv.weight',
      'bn1.weight',
      'bn1.bias',
      'bn1.running_mean',
      'bn1.running_var',
    ]);
    expect(Object.keys(ds.stateShapes()).filter((k) => k.endsWith('weight'))).toEqual([
      'conv_dw.weight',
      'bn1.weight',
      'se.conv_reduce.weight',
      'se.conv_expand.weight',
      'conv_pw.weight',
      'bn2.weight',
    ]);
    expect(ir.stateShapes()['se.conv_reduce.weight']).toEqual([2, 32, 1, 1]);
    expect(Object.keys(er.stateShapes()).filter((k) => k.endsWith('weight'))).toEqual([
      'conv_exp.weight',
      'bn1.weight',
      'conv_pwl.weight',
      'bn2.weight',
    ]);
    expect(Object.keys(cna.stateShapes())).toContain('conv.bias');
    expect(Object.keys(sep.stateShapes())).toEqual([
      'conv_dw.weight',
      'conv_pw.weight',
      'conv_pw.bias',
      'bn.weight',
      'bn.bias',
      'bn.running_mean',
      'bn.running_var',
    ]);
  });

  it('SqueezeExcite scales channels by a sigmoid gate (literal)', () => {
    const se = new SqueezeExcite(2, { rdChannels: 1, act: 'relu' });
    se.loadStateDict({
      'conv_reduce.weight': tf.tensor4d([1, 1], [1, 2, 1, 1]),
      'conv_reduce.bias': tf.tensor1d([0]),
      'conv_expand.weight': tf.tensor4d([1, -1], [2, 1, 1, 1]),
      'conv_expand.bias': tf.tensor1d([0, 0]),
    });
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]);
    // mean = [2, 3]; reduce = 5; gates = sigmoid(5), sigmoid(-5)
    const g = [1 / (1 + Math.exp(-5)), 1 / (1 + Math.exp(5))];
    const y = se.forward(x);
    expectValues(y, [1 * g[0], 2 * g[1], 3 * g[0], 4 * g[1]], 1e-6);
    tf.dispose([x, y]);
  });

  it('folded BN + fused activation gives the same numbers as the reference path', async () => {
    for (const block of makeBlocks()) {
      // Random BN statistics so that folding matters.
      const state = block.stateDict();
      const randomised = tf.tidy(() => {
        const out: Record<string, tf.Tensor> = {};
        for (const [k, v] of Object.entries(state)) {
          out[k] = k.endsWith('running_var')
            ? tf.add(tf.randomUniform(v.shape), 0.5)
            : tf.randomNormal(v.shape, 0, 0.5);
        }
        return out;
      });
      block.loadStateDict(randomised);
      tf.dispose([...Object.values(state), ...Object.values(randomised)]);
      block.eval();
      const x = tf.randomNormal([2, 9, 9, 8]) as tf.Tensor4D;
      const ref = tf.tidy(() => block.forward(x));
      block.fuseForInference();
      tf.dispose(tf.tidy(() => block.forward(x)));
      await expectNoLeaks(() => {
        const y = tf.tidy(() => block.forward(x));
        expectClose(y, ref, 1e-4, `${block.constructor.name} folded`);
        y.dispose();
      });
      block.fuseForInference(false);
      tf.dispose([x, ref]);
      block.dispose();
    }
  });

  it('residual only when stride 1 and channels equal', () => {
    const [cn, ds, ir, er] = makeBlocks();
    const x = tf.randomNormal([1, 6, 6, 8]) as tf.Tensor4D;
    expect(tf.tidy(() => cn.forward(x)).shape).toEqual([1, 6, 6, 8]);
    expect(tf.tidy(() => ds.forward(x)).shape).toEqual([1, 6, 6, 8]);
    expect(tf.tidy(() => ir.forward(x)).shape).toEqual([1, 3, 3, 16]);
    expect(tf.tidy(() => er.forward(x)).shape).toEqual([1, 6, 6, 8]);
    expect(() => ir.forward(tf.zeros([1, 6, 6, 4]) as tf.Tensor4D)).toThrow(
      /InvertedResidual.forward: expected input \[batch, height, width, 8\], got \[1,6,6,4\]/,
    );
    x.dispose();
  });
});
