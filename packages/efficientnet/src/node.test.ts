import { join } from 'node:path';
import { createModel } from '@effdet/efficientnet';
import { loadModel } from '@effdet/efficientnet/node';
import { describeWithFixture, expectClose, fixtureTensor, readFixture } from '@effdet/testing';
import { readSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

describeWithFixture(
  'efficientnet/tf_efficientnet_b0_cls_224.io.safetensors',
  'createModel / loadModel with weights',
  (ioPath) => {
    const weights = join(ioPath, '..', 'tf_efficientnet_b0_s21.weights.safetensors');
    beforeAll(async () => {
      await tf.setBackend('wasm');
    });

    it('loadModel reads a weights file and reproduces timm logits', async () => {
      const model = await loadModel('tf_efficientnet_b0', { weights });
      const io = readFixture(ioPath);
      const x = fixtureTensor(io, 'input');
      const ref = fixtureTensor(io, 'logits');
      const y = model.eval().forward(x);
      expectClose(y, ref, 1e-3, 'logits');
      tf.dispose([x, ref, y]);
      model.dispose();
    });

    it('createModel takes an in-memory map synchronously; a wrong model fails strictly', async () => {
      const { tensors } = await readSafetensorsFile(weights);
      const m = createModel('tf_efficientnet_b0', { weights: tensors });
      expect(m.conv_stem.weight.allocated).toBe(true);
      m.dispose();
      const before = tf.memory().numTensors;
      expect(() => createModel('tf_efficientnet_b1', { weights: tensors })).toThrow(
        /missing: .*blocks\.1\.2/,
      );
      expect(tf.memory().numTensors).toBe(before);
      await expect(loadModel('tf_efficientnet_lite0', { weights })).rejects.toThrow(/mis-shaped|unexpected/);
    });
  },
);

// timm's own tiny `test_efficientnet` (not our `effdet_test_efficientnet`): a committed case written by
// tools/reference/timm_test_efficientnet_case.py (seeded weights as float16, timm's logits and features).
describe("timm's test_efficientnet", () => {
  const testdata = join(__dirname, '..', 'testdata');
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('loads timm weights unchanged and reproduces its logits and features', async () => {
    const io = readFixture(join(testdata, 'timm_test_efficientnet_io.safetensors'));
    const before = tf.memory().numTensors;
    const model = await loadModel('test_efficientnet', {
      numClasses: 10,
      weights: join(testdata, 'timm_test_efficientnet.safetensors'),
    });
    const x = fixtureTensor(io, 'input');
    const ref = fixtureTensor(io, 'logits');
    const y = model.eval().forward(x);
    expectClose(y, ref, 1e-4, 'logits');
    const feats = createModel('test_efficientnet', { featuresOnly: true });
    const sd = model.stateDict();
    feats.loadStateDict(sd, { strict: false });
    tf.dispose(Object.values(sd));
    const info = JSON.parse(io.metadata.feature_info) as {
      num_chs: number;
      reduction: number;
      module: string;
    }[];
    expect(feats.featureInfo.map((f) => [f.channels, f.reduction, f.module])).toEqual(
      info.map((f) => [f.num_chs, f.reduction, f.module]),
    );
    const fs = feats.eval().features(x);
    fs.forEach((f, i) => {
      const r = fixtureTensor(io, `features.${i}`);
      expectClose(f, r, 1e-4, `features.${i}`);
      r.dispose();
    });
    tf.dispose([x, ref, y, ...fs]);
    model.dispose();
    feats.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is not our effdet_test_efficientnet: those weights are refused, naming the first problem', async () => {
    const weights = join(testdata, 'timm_test_efficientnet.safetensors');
    await expect(loadModel('effdet_test_efficientnet', { numClasses: 10, weights })).rejects.toThrow(
      /mis-shaped: conv_stem\.weight expected \[16,3,3,3\] got \[24,3,3,3\]/,
    );
  });
});
