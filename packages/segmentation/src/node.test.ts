import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage, encodePng } from '@effdet/effdet/node';
import { StateDictError } from '@effdet/layers';
import { DeepLabV3Plus, Unet } from '@effdet/segmentation';
import { loadSegmentationModel, maskPng, overlayPng, predictMaskFile } from '@effdet/segmentation/node';
import { describeWithFixture, fixturePath, readFixture } from '@effdet/testing';
import { fromTypedArray, type RawTensorMap } from '@effdet/weights';
import { writeSafetensorsFile } from '@effdet/weights/node';
import * as tf from '@tensorflow/tfjs-core';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'effdet-seg-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWithFixture(
  'segmentation/unet_tf_efficientnet_b0_256.io.safetensors',
  'image file -> class map',
  (ioPath) => {
    it('the model named by the weights metadata reproduces the argmax of the reference logits', async () => {
      const io = readFixture(ioPath);
      const weights = ioPath.replace(/[^/]+$/, `${io.metadata.weights}.weights.safetensors`);
      const model = await loadSegmentationModel(undefined, { weights });
      expect(model).toBeInstanceOf(Unet);
      expect(model.numClasses).toBe(3);
      const img = io.tensors.get('image_u8')!;
      const png = join(dir, 'img.png');
      writeFileSync(png, encodePng(Uint8Array.from(img.data), 256, 256));
      const before = tf.memory().numTensors;
      const { image, prediction } = await predictMaskFile(model, png);
      expect(tf.memory().numTensors).toBe(before);
      expect([image.width, image.height, prediction.width, prediction.height]).toEqual([256, 256, 256, 256]);
      // Argmax of the smp logits, skipping pixels whose two best classes are within the tolerance.
      const logits = io.tensors.get('logits')!.data;
      let compared = 0;
      let differ = 0;
      for (let i = 0; i < 256 * 256; i++) {
        const row = Array.from(logits.subarray(i * 3, i * 3 + 3));
        const sorted = [...row].sort((a, b) => b - a);
        if (sorted[0] - sorted[1] < 1e-3) continue;
        compared++;
        if (prediction.mask[i] !== row.indexOf(sorted[0])) differ++;
      }
      expect(compared).toBeGreaterThan(60000);
      expect(differ).toBe(0);
      // Overlay and mask PNGs decode to the image size.
      for (const bytes of [overlayPng(image, prediction.mask), maskPng(prediction.mask, 256, 256)]) {
        const back = await decodeImage(bytes);
        expect([back.width, back.height]).toEqual([256, 256]);
      }
      model.dispose();
    });
  },
);

describe('loadSegmentationModel', () => {
  it('reads classes from the weights; <arch>:<encoder> specs; mismatched weights fail by name', async () => {
    const dl = fixturePath('segmentation/deeplabv3plus_tf_efficientnet_b0_256_s42.weights.safetensors');
    if (!dl) return;
    const m = await loadSegmentationModel('deeplabv3plus:tu-tf_efficientnet_b0', { weights: dl });
    expect(m).toBeInstanceOf(DeepLabV3Plus);
    expect(m.numClasses).toBe(5);
    m.dispose();
    await expect(loadSegmentationModel('unet:tu-tf_efficientnet_b0', { weights: dl })).rejects.toThrow(
      StateDictError,
    );
    await expect(loadSegmentationModel('unet:tu-tf_efficientnet_b0', { weights: dl })).rejects.toThrow(
      /missing: decoder\.blocks\.0\.conv1\.0\.weight/,
    );
  });

  it('an smp save_pretrained folder: config.json + model.safetensors', async () => {
    const src = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [16, 16, 8, 8, 8],
      classes: 2,
    });
    const state = src.stateDict();
    const raw: RawTensorMap = {};
    for (const [k, t] of Object.entries(state))
      raw[k] = fromTypedArray(t.dataSync() as Float32Array, t.shape);
    tf.dispose(Object.values(state));
    const folder = join(dir, 'smp');
    await writeSafetensorsFile(join(folder, 'model.safetensors'), raw);
    writeFileSync(
      join(folder, 'config.json'),
      JSON.stringify({
        _model_class: 'Unet',
        encoder_name: 'tu-effdet_test_efficientnet',
        encoder_weights: 'imagenet',
        decoder_channels: [16, 16, 8, 8, 8],
        classes: 2,
        activation: null,
      }),
    );
    const m = await loadSegmentationModel(folder);
    expect(m).toBeInstanceOf(Unet);
    const a = src.segmentation_head.conv.weight.value.dataSync();
    const b = (m as Unet).segmentation_head.conv.weight.value.dataSync();
    expect(Array.from(b)).toEqual(Array.from(a));
    src.dispose();
    m.dispose();
  });

  it('bad specs say what is expected', async () => {
    await expect(loadSegmentationModel('unet')).rejects.toThrow(
      /model spec must be '<arch>:<encoder>' \(e.g. unet:tu-tf_efficientnet_b0\), 'efficientdet:<config>', an smp config.json or its folder; got 'unet'/,
    );
    await expect(loadSegmentationModel('fpn:tu-tf_efficientnet_b0')).rejects.toThrow(
      /unknown architecture 'fpn'/,
    );
    await expect(loadSegmentationModel('unet:resnet34')).rejects.toThrow(/unknown encoder 'resnet34'/);
    await expect(loadSegmentationModel(undefined)).rejects.toThrow(
      /no model spec, and the weights' metadata names no arch/,
    );
    await expect(loadSegmentationModel(join(dir, 'nowhere.json'))).rejects.toThrow(
      /cannot read the smp config/,
    );
  });

  it('efficientdet:<config> builds the BiFPN segmenter', async () => {
    const m = await loadSegmentationModel('efficientdet:tf_efficientdet_lite0', { classes: 4 });
    expect(m.numClasses).toBe(4);
    expect(m.fixedInputSize).toEqual([320, 320]);
    m.dispose();
  });
});
