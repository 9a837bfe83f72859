import { createEfficientDet } from '@effdet/effdet';
import {
  describeWithBackends,
  describeWithFixture,
  expectClose,
  expectNoLeaks,
  fixtureTensor,
  readFixture,
} from '@effdet/testing';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';
import { loadRawStateDict } from './weights.js';

/** [io fixture, weights file (several formats on purpose)] */
const CASES: [string, string][] = [
  ['effdet/tf_efficientdet_d0_512.io.safetensors', 'tf_efficientdet_d0_s1.weights.safetensors'],
  ['effdet/tf_efficientdet_lite0_320.io.safetensors', 'tf_efficientdet_lite0_s2.weights.safetensors'],
  ['effdet/efficientdet_d0_256.io.safetensors', 'efficientdet_d0_s3.legacy.pth'],
  ['effdet/tf_efficientdet_d0_384x256.io.safetensors', 'tf_efficientdet_d0_s1.pth'],
];

for (const [ioRel, weightsFile] of CASES) {
  describeWithFixture(ioRel, `EfficientDet network parity: ${ioRel}`, (ioPath) => {
    describeWithBackends('backbone, pyramid and heads match effdet', () => {
      it('every intermediate tensor is within tolerance', async () => {
        const io = readFixture(ioPath);
        const meta = io.metadata;
        const model = createEfficientDet(meta.model, {
          imageSize: [Number(meta.height), Number(meta.width)],
          numClasses: Number(meta.num_classes),
        });
        loadRawStateDict(model, await loadWeights(ioPath.replace(/[^/]+$/, weightsFile)));
        model.eval();
        const input = fixtureTensor(io, 'input');
        const check = (name: string, t: tf.Tensor) => {
          if (!io.tensors.has(name)) return 0;
          const ref = fixtureTensor(io, name);
          try {
            expectClose(t, ref, 1e-3, name);
          } finally {
            ref.dispose();
          }
          return 1;
        };
        await expectNoLeaks(() => {
          const out = model.forwardIntermediates(input);
          const groups: [string, tf.Tensor[]][] = [
            ['backbone', out.backbone],
            ['fpn_extra', out.fpnExtra],
            ['fpn_cell0_node', out.fpnCell0Nodes],
            ['fpn', out.fpn],
            ['class', out.classOut],
            ['box', out.boxOut],
          ];
          let n = 0;
          for (const [prefix, ts] of groups)
            for (const [i, t] of ts.entries()) n += check(`${prefix}.${i}`, t);
          // Heads (levels 1..4 at least) are in every fixture; intermediates in the three single-image ones.
          expect(n).toBeGreaterThanOrEqual(io.tensors.has('backbone.0') ? 27 : 8);
          tf.dispose(Object.values(out).flat());
        }, 'forwardIntermediates');
        // The folded inference path gives the same head outputs.
        model.fuseForInference();
        const folded = model.forward(input);
        for (const [i, t] of folded.classOut.entries()) check(`class.${i}`, t);
        for (const [i, t] of folded.boxOut.entries()) check(`box.${i}`, t);
        tf.dispose([...folded.classOut, ...folded.boxOut, input]);
        model.dispose();
      });
    });
  });
}
