import { loadRawStateDict } from '@effdet/effdet';
import { createSegmentationModel, type SegmentationModel, smpKwargsToOptions } from '@effdet/segmentation';
import {
  describeWithFixture,
  expectClose,
  expectNoLeaks,
  type FixtureFile,
  fixtureTensor,
  readFixture,
} from '@effdet/testing';
import { loadWeights } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

/** The model an io dump describes (arch / encoder / kwargs / classes metadata), with its weights loaded unchanged. */
async function buildFromDump(ioPath: string, io: FixtureFile): Promise<SegmentationModel> {
  const m = io.metadata;
  const model = createSegmentationModel(m.arch, {
    ...smpKwargsToOptions(JSON.parse(m.kwargs)),
    encoderName: m.encoder,
    classes: Number(m.classes),
  });
  loadRawStateDict(model, await loadWeights(ioPath.replace(/[^/]+$/, `${m.weights}.weights.safetensors`)));
  return model.eval();
}

function compare(model: SegmentationModel, io: FixtureFile, what: string): void {
  const input = fixtureTensor(io, 'input');
  const out = model.forwardIntermediates(input);
  try {
    out.features.forEach((f, i) => {
      const ref = fixtureTensor(io, `encoder.${i}`);
      expectClose(f, ref, 1e-3, `${what} encoder.${i}`);
      ref.dispose();
    });
    const logits = fixtureTensor(io, 'logits');
    expectClose(out.logits, logits, 1e-3, `${what} logits`);
    logits.dispose();
  } finally {
    tf.dispose([input, ...out.features, out.decoder, out.logits, out.masks]);
  }
}

const CASES = [
  'segmentation/unet_tf_efficientnet_b0_256.io.safetensors',
  'segmentation/deeplabv3plus_tf_efficientnet_b0_256.io.safetensors',
];

for (const rel of CASES) {
  describeWithFixture(rel, `smp parity: ${rel}`, (ioPath) => {
    const io = readFixture(ioPath);
    let model: SegmentationModel;

    beforeAll(async () => {
      await tf.setBackend('wasm');
      model = await buildFromDump(ioPath, io);
    });
    afterAll(() => model?.dispose());

    it('loads the smp state dict unchanged (strict, every name and shape)', async () => {
      const weights = await loadWeights(
        ioPath.replace(/[^/]+$/, `${io.metadata.weights}.weights.safetensors`),
      );
      const shapes = model.stateShapes();
      expect(Object.keys(shapes).sort()).toEqual(Object.keys(weights).sort());
      for (const [k, t] of Object.entries(weights)) expect(shapes[k]).toEqual(t.shape);
    });

    for (const folded of [false, true]) {
      it(`encoder.i and logits match smp on wasm (${folded ? 'folded BN' : 'reference path'})`, async () => {
        model.fuseForInference(folded);
        compare(model, io, `${io.metadata.arch} [wasm${folded ? ', folded' : ''}]`);
        // The folded weights are cached now: a second pass must leave nothing behind.
        await expectNoLeaks(() => compare(model, io, io.metadata.arch), `${io.metadata.arch} forward`);
        model.fuseForInference(false);
      });
    }
  });
}

// cpu (the reference kernels) is slow in jest: the decoder and head of DeepLabV3+ run on the dump's own encoder
// outputs (the encoder's cpu parity is @effdet/efficientnet's), which covers every decoder op at modest cost.
describeWithFixture(CASES[1], 'smp parity on cpu (DeepLabV3Plus decoder and head)', (ioPath) => {
  it('logits from the reference encoder.i match smp on cpu', async () => {
    // Loading (PyTorch -> TF.js layout transposes) is slow on cpu in jest: load on wasm, then switch.
    await tf.setBackend('wasm');
    const io = readFixture(ioPath);
    const model = await buildFromDump(ioPath, io);
    await tf.setBackend('cpu');
    const features = [0, 1, 2, 3, 4, 5].map((i) => fixtureTensor(io, `encoder.${i}`) as tf.Tensor4D);
    const expected = fixtureTensor(io, 'logits');
    try {
      await expectNoLeaks(() => {
        const logits = tf.tidy(() => model.segmentation_head.logits(model.decoder.forward(features)));
        expectClose(logits, expected, 1e-3, 'DeepLabV3Plus logits [cpu]');
        logits.dispose();
      });
    } finally {
      tf.dispose([...features, expected]);
      model.dispose();
    }
  });
});
