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
