import { createModel } from '@effdet/efficientnet';
import {
  describeWithBackends,
  describeWithFixture,
  expectClose,
  expectNoLeaks,
  type FixtureFile,
  fixtureTensor,
  fixtureTensors,
  readFixture,
} from '@effdet/testing';
import { toTfTensors } from '@effdet/weights';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

/** Loads the `prefix` part of a safetensors weight fixture into a model, disposing the temporaries. */
function loadFixtureWeights(
  model: { loadStateDict: (t: Record<string, tf.Tensor>) => unknown },
  file: FixtureFile,
  prefix = '',
) {
  const tensors = fixtureTensors(file, prefix);
  try {
    model.loadStateDict(tensors);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

describeWithFixture(
  'efficientnet/tf_efficientnet_b0_cls_224.io.safetensors',
  'tf_efficientnet_b0 classifier parity',
  (ioPath) => {
    describeWithBackends('tf_efficientnet_b0 logits and pre_logits', () => {
      const io = readFixture(ioPath);
      const weights = readFixture(
        ioPath.replace('tf_efficientnet_b0_cls_224.io', `${io.metadata.weights}.weights`),
      );
      for (const folded of [false, true]) {
        it(`matches timm (${folded ? 'folded BN + fused ops' : 'reference path'})`, async () => {
          const model = createModel('tf_efficientnet_b0');
          loadFixtureWeights(model, weights);
          model.eval().fuseForInference(folded);
          const input = fixtureTensor(io, 'input');
          const expectedLogits = fixtureTensor(io, 'logits');
          const expectedPre = fixtureTensor(io, 'pre_logits');
          // The first call builds the folded-weight cache; the second must leave the tensor count unchanged.
          tf.dispose(model.forward(input));
          await expectNoLeaks(() => {
            const logits = model.forward(input);
            const feats = model.forwardFeatures(input);
            const pre = model.forwardHead(feats, { preLogits: true });
            expectClose(logits, expectedLogits, 1e-3, 'logits');
            expectClose(pre, expectedPre, 1e-3, 'pre_logits');
            tf.dispose([logits, feats, pre]);
          }, 'tf_efficientnet_b0 forward');
          tf.dispose([input, expectedLogits, expectedPre]);
          model.dispose();
        });
      }
    });
  },
);

/** Every effdet fixture with backbone intermediates, and the file its weights come from (three formats). */
const BACKBONE_CASES: [string, string, string][] = [
  ['effdet/tf_efficientdet_d0_512.io.safetensors', 'tf_efficientnet_b0', 'tf_efficientdet_d0_s1.pth'],
  [
    'effdet/tf_efficientdet_lite0_320.io.safetensors',
    'tf_efficientnet_lite0',
    'tf_efficientdet_lite0_s2.weights.safetensors',
  ],
  ['effdet/efficientdet_d0_256.io.safetensors', 'efficientnet_b0', 'efficientdet_d0_s3.legacy.pth'],
];

/** The `backbone.` part of a weights file (any format @effdet/weights reads), prefix removed. */
async function backboneWeights(path: string): Promise<Record<string, tf.Tensor>> {
  const raw = await loadWeights(path, { names: (n: string) => n.startsWith('backbone.') });
  const renamed = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.slice('backbone.'.length), v]));
  return toTfTensors(renamed);
}

for (const [ioRel, backbone, weightsFile] of BACKBONE_CASES) {
  describeWithFixture(ioRel, `${backbone} backbone features parity (${ioRel})`, (ioPath) => {
    describeWithBackends(`${backbone} features`, () => {
      it('backbone.0..2 match effdet', async () => {
        const io = readFixture(ioPath);
        const weights = await backboneWeights(ioPath.replace(/[^/]+$/, weightsFile));
        const model = createModel(backbone, { featuresOnly: true, outIndices: [2, 3, 4] });
        model.loadStateDict(weights);
        tf.dispose(Object.values(weights));
        model.eval();
        const input = fixtureTensor(io, 'input');
        await expectNoLeaks(() => {
          const feats = model.features(input);
          feats.forEach((f, i) => {
            const ref = fixtureTensor(io, `backbone.${i}`);
            expectClose(f, ref, 1e-3, `${backbone} backbone.${i}`);
            ref.dispose();
          });
          tf.dispose(feats);
        });
        input.dispose();
        model.dispose();
      });
    });
  });
}
