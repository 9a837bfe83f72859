import { createModel, listModels } from '@effdet/efficientnet';
import { StateDictError } from '@effdet/layers';
import {
  createFromSmpConfig,
  createSegmentationModel,
  DeepLabV3,
  DeepLabV3Plus,
  type SegmentationModel,
  smpKwargsToOptions,
  Unet,
} from '@effdet/segmentation';
import { expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';

/** Nothing is allocated until used: building from shapes costs no memory. */
function unallocated(m: SegmentationModel): boolean {
  return m.namedState().every(([, p]) => !p.allocated);
}

describe('state-dict names and shapes as smp builds them (from shapes, nothing allocated)', () => {
  it('Unet defaults on tf_efficientnet_b0: 5 blocks, 3x3 head', () => {
    const m = new Unet({ encoderName: 'tu-tf_efficientnet_b0', classes: 3 });
    const s = m.stateShapes();
    expect(m.encoder.outChannels).toEqual([3, 16, 24, 40, 112, 320]);
    expect(s['encoder.model.conv_stem.weight']).toEqual([32, 3, 3, 3]);
    expect(s['decoder.blocks.0.conv1.0.weight']).toEqual([256, 320 + 112, 3, 3]);
    expect(s['decoder.blocks.0.conv1.1.running_var']).toEqual([256]);
    expect(s['decoder.blocks.3.conv1.0.weight']).toEqual([32, 64 + 16, 3, 3]);
    expect(s['decoder.blocks.4.conv1.0.weight']).toEqual([16, 32, 3, 3]);
    expect(s['decoder.blocks.4.conv2.0.weight']).toEqual([16, 16, 3, 3]);
    expect(s['segmentation_head.0.weight']).toEqual([3, 16, 3, 3]);
    expect(s['segmentation_head.0.bias']).toEqual([3]);
    expect(s['decoder.blocks.0.conv1.0.bias']).toBeUndefined();
    expect(Object.keys(s).some((k) => k.startsWith('classification_head'))).toBe(false);
    expect(unallocated(m)).toBe(true);
  });

  it('Unet depth 3, no norm (conv bias), scse attention, aux head', () => {
    const m = new Unet({
      encoderName: 'tu-tf_efficientnet_lite0',
      encoderDepth: 3,
      decoderChannels: [64, 32, 16],
      decoderUseNorm: false,
      decoderAttentionType: 'scse',
      auxParams: { classes: 7, pooling: 'max', dropout: 0.1 },
    });
    const s = m.stateShapes();
    expect(m.encoder.outChannels).toEqual([3, 16, 24, 40]);
    expect(m.encoder.outputStride).toBe(8);
    expect(s['decoder.blocks.0.conv1.0.weight']).toEqual([64, 40 + 24, 3, 3]);
    expect(s['decoder.blocks.0.conv1.0.bias']).toEqual([64]);
    expect(s['decoder.blocks.0.conv1.1.weight']).toBeUndefined();
    // SCSE on (in + skip) channels before conv1 and on the output after conv2; the last block builds attention1
    // though it has no skip to apply it to.
    expect(s['decoder.blocks.0.attention1.attention.cSE.1.weight']).toEqual([4, 64, 1, 1]);
    expect(s['decoder.blocks.0.attention1.attention.cSE.3.bias']).toEqual([64]);
    expect(s['decoder.blocks.0.attention1.attention.sSE.0.weight']).toEqual([1, 64, 1, 1]);
    expect(s['decoder.blocks.2.attention1.attention.cSE.1.weight']).toEqual([2, 32, 1, 1]);
    expect(s['decoder.blocks.2.attention2.attention.cSE.1.weight']).toEqual([1, 16, 1, 1]);
    expect(s['classification_head.3.weight']).toEqual([7, 40]);
    expect(s['classification_head.3.bias']).toEqual([7]);
    // timm's feature extractor keeps every block whatever the depth (smp's state dict has them all).
    expect(s['encoder.model.blocks.6.0.conv_pwl.weight']).toEqual([320, 1152, 1, 1]);
  });

  it('Unet with smp-style instancenorm / batchnorm dicts and the deprecated decoderUseBatchnorm', () => {
    const inst = new Unet({
      encoderName: 'tu-tf_efficientnetv2_b0',
      decoderUseNorm: { type: 'instancenorm', affine: true },
    });
    expect(inst.stateShapes()['decoder.blocks.1.conv1.1.weight']).toEqual([128]);
    expect(inst.stateShapes()['decoder.blocks.1.conv1.1.running_mean']).toBeUndefined();
    const bn = new Unet({
      encoderName: 'tu-tf_efficientnetv2_b0',
      decoderUseNorm: 'identity',
      decoderUseBatchnorm: { type: 'batchnorm', eps: 1e-3 },
    });
    expect(bn.decoder.blocks.items[0].conv1.bn?.eps).toBe(1e-3);
  });

  it('DeepLabV3 on tf_efficientnet_b3, output stride 8: ASPP names, 1x1 head, aux', () => {
    const m = new DeepLabV3({ encoderName: 'tu-tf_efficientnet_b3', classes: 4, auxParams: { classes: 2 } });
    const s = m.stateShapes();
    expect(m.encoder.outChannels).toEqual([3, 24, 32, 48, 136, 384]);
    expect(m.encoder.reductions).toEqual([1, 2, 4, 8, 8, 8]);
    expect(m.encoder.outputStride).toBe(8);
    expect(s['decoder.aspp.convs.0.0.weight']).toEqual([256, 384, 1, 1]);
    expect(s['decoder.aspp.convs.1.0.weight']).toEqual([256, 384, 3, 3]);
    expect(s['decoder.aspp.convs.3.1.running_mean']).toEqual([256]);
    expect(s['decoder.aspp.convs.4.1.weight']).toEqual([256, 384, 1, 1]);
    expect(s['decoder.aspp.convs.4.2.weight']).toEqual([256]);
    expect(s['decoder.aspp.project.0.weight']).toEqual([256, 5 * 256, 1, 1]);
    expect(s['decoder.conv.weight']).toEqual([256, 256, 3, 3]);
    expect(s['decoder.bn.running_var']).toEqual([256]);
    expect(s['segmentation_head.0.weight']).toEqual([4, 256, 1, 1]);
    expect(s['classification_head.3.weight']).toEqual([2, 384]);
    expect(m.segmentation_head.upsampling).toBe(8);
    expect(unallocated(m)).toBe(true);
  });

  it('DeepLabV3Plus on tf_efficientnet_b3, output stride 16: separable ASPP, 48-channel skip', () => {
    const m = new DeepLabV3Plus({ encoderName: 'tu-tf_efficientnet_b3', classes: 5, decoderChannels: 128 });
    const s = m.stateShapes();
    expect(m.encoder.reductions).toEqual([1, 2, 4, 8, 16, 16]);
    expect(s['decoder.aspp.0.convs.1.0.0.weight']).toEqual([384, 1, 3, 3]);
    expect(s['decoder.aspp.0.convs.1.0.1.weight']).toEqual([128, 384, 1, 1]);
    expect(s['decoder.aspp.0.convs.1.1.weight']).toEqual([128]);
    expect(s['decoder.aspp.1.0.weight']).toEqual([128, 1, 3, 3]);
    expect(s['decoder.aspp.1.1.weight']).toEqual([128, 128, 1, 1]);
    expect(s['decoder.aspp.2.running_mean']).toEqual([128]);
    expect(s['decoder.block1.0.weight']).toEqual([48, 32, 1, 1]);
    expect(s['decoder.block2.0.0.weight']).toEqual([176, 1, 3, 3]);
    expect(s['decoder.block2.0.1.weight']).toEqual([128, 176, 1, 1]);
    expect(s['decoder.block2.1.bias']).toEqual([128]);
    expect(s['segmentation_head.0.weight']).toEqual([5, 128, 1, 1]);
    expect(m.decoder.scaleFactor).toBe(4);
    expect(m.segmentation_head.upsampling).toBe(4);
  });

  it('every option of the three architectures builds on every registered encoder', () => {
    const names = listModels();
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) {
      const encoderName = `tu-${name}`;
      const feats = createModel(name, { featuresOnly: true }).featureInfo.map((f) => f.channels);
      const builds: SegmentationModel[] = [
        new Unet({
          encoderName,
          encoderDepth: 4,
          decoderChannels: [128, 64, 32, 16],
          decoderAttentionType: 'scse',
        }),
        new DeepLabV3({ encoderName, encoderOutputStride: 16, decoderAsppSeparable: true, upsampling: 16 }),
        new DeepLabV3Plus({
          encoderName,
          encoderOutputStride: 8,
          encoderDepth: 4,
          auxParams: { classes: 3 },
        }),
      ];
      const [u, d3, dp] = builds.map((m) => m.stateShapes());
      expect(u['decoder.blocks.0.conv1.0.weight']).toEqual([128, feats[3] + feats[2], 3, 3]);
      expect(d3['decoder.aspp.convs.1.0.1.weight']).toEqual([256, feats[4], 1, 1]);
      expect(dp['decoder.block1.0.weight']).toEqual([48, feats[1], 1, 1]);
      expect(dp['classification_head.3.weight']).toEqual([3, feats[3]]);
      expect(builds.every(unallocated)).toBe(true);
    }
  });
});

describe('forward on wasm: output size equals the input size, no leaks', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  const CASES: [string, () => SegmentationModel, [number, number]][] = [
    [
      'Unet lite0 depth 4 scse, any size',
      () =>
        new Unet({
          encoderName: 'tu-tf_efficientnet_lite0',
          encoderDepth: 4,
          decoderChannels: [64, 32, 32, 16],
          decoderAttentionType: 'scse',
          classes: 2,
        }),
      [50, 70],
    ],
    [
      'Unet v2_b0 depth 3, no norm, bilinear, aux',
      () =>
        new Unet({
          encoderName: 'tu-tf_efficientnetv2_b0',
          encoderDepth: 3,
          decoderChannels: [32, 16, 8],
          decoderUseNorm: false,
          decoderInterpolation: 'bilinear',
          auxParams: { classes: 3 },
        }),
      [40, 24],
    ],
    [
      'Unet b0 nearest-exact, instancenorm, sigmoid',
      () =>
        new Unet({
          encoderName: 'tu-tf_efficientnet_b0',
          decoderChannels: [32, 32, 16, 16, 8],
          decoderUseNorm: 'instancenorm',
          decoderInterpolation: 'nearest-exact',
          activation: 'sigmoid',
        }),
      [33, 47],
    ],
    [
      'DeepLabV3 b3 stride 8, aux',
      () =>
        new DeepLabV3({
          encoderName: 'tu-tf_efficientnet_b3',
          decoderChannels: 32,
          classes: 4,
          auxParams: { classes: 2 },
        }),
      [64, 48],
    ],
    [
      'DeepLabV3Plus b3 stride 16',
      () =>
        new DeepLabV3Plus({
          encoderName: 'tu-tf_efficientnet_b3',
          decoderChannels: 32,
          classes: 3,
          activation: 'softmax2d',
        }),
      [48, 64],
    ],
    [
      'DeepLabV3Plus b0 stride 8 depth 4, plain ASPP',
      () =>
        new DeepLabV3Plus({
          encoderName: 'tu-tf_efficientnet_b0',
          encoderOutputStride: 8,
          encoderDepth: 4,
          decoderChannels: 32,
          decoderAsppSeparable: false,
          decoderAtrousRates: [2, 4, 6],
        }),
      [32, 40],
    ],
    [
      'DeepLabV3 lite0 depth 3 (upsampling 8)',
      () => new DeepLabV3({ encoderName: 'tu-tf_efficientnet_lite0', encoderDepth: 3, decoderChannels: 16 }),
      [24, 32],
    ],
  ];

  it.each(CASES)('%s', async (_name, build, [h, w]) => {
    const m = build().eval();
    try {
      const x = tf.randomNormal([2, h, w, 3]) as tf.Tensor4D;
      const first = m.forwardWithAux(x); // allocates the weights
      tf.dispose([first.masks, ...(first.labels ? [first.labels] : [])]);
      await expectNoLeaks(() => {
        const { masks, labels } = m.forwardWithAux(x);
        expect(masks.shape).toEqual([2, h, w, m.classes]);
        expect(Array.from(masks.dataSync()).every(Number.isFinite)).toBe(true);
        const aux = m.classification_head;
        if (aux) expect(labels?.shape).toEqual([2, aux.linear.outFeatures]);
        else expect(labels).toBeNull();
        if (m.arch === 'DeepLabV3Plus' && m.classes === 3) {
          // softmax2d: probabilities over the class axis
          const err = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.sum(masks, -1), 1))));
          expect(err.dataSync()[0]).toBeLessThan(1e-5);
          err.dispose();
        }
        tf.dispose([masks, ...(labels ? [labels] : [])]);
      }, 'forwardWithAux');
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it('the folded inference path equals the reference path', async () => {
    const m = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [32, 32, 16, 16, 16],
      classes: 2,
    }).eval();
    const x = tf.randomNormal([1, 32, 32, 3]);
    const a = m.forward(x);
    m.fuseForInference();
    const b = m.forward(x);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([x, a, b]);
    m.dispose();
  });
});

describe('bad input gives clear errors', () => {
  it('unknown encoders name the valid ones', () => {
    expect(() => new Unet({ encoderName: 'resnet34' })).toThrow(
      /Unet: unknown encoder 'resnet34'\. Only smp's timm universal encoders .*Valid encoders: .*tu-tf_efficientnet_b0/s,
    );
    expect(() => new Unet({ encoderName: 'tf_efficientnet_b0' })).toThrow(
      /Did you mean 'tu-tf_efficientnet_b0'\?/,
    );
    expect(() => new DeepLabV3({ encoderName: 'tu-efficientnet_b9' })).toThrow(
      /DeepLabV3: unknown encoder 'tu-efficientnet_b9'\. Close names: tu-efficientnet_b0/,
    );
  });

  it('input sizes not divisible by the output stride (DeepLab) or wrong layouts', async () => {
    await tf.setBackend('cpu');
    const m = new DeepLabV3Plus({ encoderName: 'tu-effdet_test_efficientnet', decoderChannels: 16 });
    const x = tf.zeros([1, 250, 256, 3]);
    expect(() => m.forward(x)).toThrow(
      'DeepLabV3Plus.forward: input height 250 and width 256 must be divisible by the output stride 16; pad the images to 256x256 (height x width)',
    );
    const chw = tf.zeros([1, 3, 64, 64]);
    expect(() => m.forward(chw)).toThrow(
      /expected a normalised NHWC batch \[batch, height, width, 3\], got \[1,3,64,64\]/,
    );
    const ints = tf.zeros([1, 64, 64, 3], 'int32');
    expect(() => m.forward(ints)).toThrow(/expected float32 input, got int32/);
    tf.dispose([x, chw, ints]);
    m.dispose();
  });

  it('bad options name the argument and what came', () => {
    const enc = 'tu-tf_efficientnet_b0';
    expect(() => new Unet({ encoderName: enc, encoderDepth: 3 })).toThrow(
      /Unet: model depth is 3, but decoderChannels has 5 entries/,
    );
    expect(() => new Unet({ encoderName: enc, encoderDepth: 2, decoderChannels: [8, 8] })).toThrow(
      /encoderDepth must be 3, 4 or 5, got 2/,
    );
    expect(() => new DeepLabV3({ encoderName: enc, encoderOutputStride: 32 as never })).toThrow(
      /DeepLabV3: encoderOutputStride must be 8 or 16, got 32/,
    );
    expect(() => new DeepLabV3Plus({ encoderName: enc, decoderAtrousRates: [6, 12] as never })).toThrow(
      /decoderAtrousRates must be three positive integers, got \[6,12\]/,
    );
    expect(() => new Unet({ encoderName: enc, activation: 'argmax' as never })).toThrow(/use 'argmax2d'/);
    expect(() => new Unet({ encoderName: enc, decoderInterpolation: 'bicubic' as never })).toThrow(
      /decoderInterpolation must be nearest, bilinear, nearest-exact, got "bicubic" \(bicubic and area are not ported\)/,
    );
    expect(() => new Unet({ encoderName: enc, decoderUseNorm: 'layernorm' as never })).toThrow(
      /'layernorm' is not supported/,
    );
    expect(() => new Unet({ encoderName: enc, decoderChanels: [1] } as never)).toThrow(
      /Unet: unknown option\(s\) 'decoderChanels'; valid options: .*decoderChannels/,
    );
    expect(() => new Unet({ encoderName: enc, auxParams: { classes: 0 } })).toThrow(
      /auxParams.classes must be a positive integer, got 0/,
    );
    expect(() => new Unet({ encoderName: enc, classes: 2.5 })).toThrow(
      /classes must be a positive integer, got 2.5/,
    );
    expect(() => createSegmentationModel('fpn', { encoderName: enc })).toThrow(
      /unknown architecture 'fpn'; available: Unet, DeepLabV3, DeepLabV3Plus/,
    );
  });

  it('weights of another architecture fail listing the names', () => {
    const unet = new Unet({
      encoderName: 'tu-effdet_test_efficientnet',
      decoderChannels: [16, 16, 16, 16, 16],
    });
    const dl = new DeepLabV3Plus({ encoderName: 'tu-effdet_test_efficientnet', decoderChannels: 16 });
    const shapes = Object.fromEntries(
      Object.entries(unet.stateShapes()).map(([k, s]) => [
        k,
        { shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) },
      ]),
    );
    expect(() => dl.loadStateDict(shapes)).toThrow(StateDictError);
    expect(() => dl.loadStateDict(shapes)).toThrow(
      /missing: .*decoder\.aspp\.0\.convs\.0\.0\.weight.*unexpected: .*decoder\.blocks\.0/s,
    );
    unet.dispose();
    dl.dispose();
  });
});

describe('smp keyword arguments and config.json', () => {
  it('maps smp names (and a save_pretrained config) to the same model', () => {
    const opts = smpKwargsToOptions({
      encoder_name: 'tu-tf_efficientnet_lite0',
      encoder_depth: 4,
      encoder_weights: 'imagenet',
      decoder_channels: [64, 32, 16, 16],
      decoder_attention_type: 'scse',
      classes: 2,
      aux_params: { classes: 3, dropout: 0.5 },
      drop_path_rate: 0.1,
      activation: null,
    });
    expect(opts).toEqual({
      encoderName: 'tu-tf_efficientnet_lite0',
      encoderDepth: 4,
      decoderChannels: [64, 32, 16, 16],
      decoderAttentionType: 'scse',
      classes: 2,
      auxParams: { classes: 3, dropout: 0.5 },
      activation: null,
      encoderOptions: { dropPathRate: 0.1 },
    });
    const m = createFromSmpConfig({ _model_class: 'Unet', ...opts });
    expect(m).toBeInstanceOf(Unet);
    expect(m.stateShapes()['classification_head.3.weight']).toEqual([3, 112]); // depth 4: the stride-16 feature
    expect(() => smpKwargsToOptions({ decoder_chanels: 1 })).toThrow(
      /unknown smp argument 'decoder_chanels'/,
    );
    expect(() => createFromSmpConfig({ encoder_name: 'tu-tf_efficientnet_b0' })).toThrow(
      /names no architecture \('_model_class' or 'arch'\)/,
    );
  });
});
