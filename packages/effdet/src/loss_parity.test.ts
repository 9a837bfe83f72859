/**
 * Parity of the anchor labeler + detection loss with effdet's DetBenchTrain (eval mode) on the reference
 * fixtures that hold training targets (`target.bbox`, `target.cls`) and the losses (`loss`, `class_loss`,
 * `box_loss`): once from the stored head outputs (`class.i`, `box.i`, when every level is stored), which isolates
 * labelling + loss, and once from our network's forward pass of `input`. Check: relative error <= 1e-3.
 *
 * Measured on wasm, relative error of loss / class_loss / box_loss:
 *   case                         stored heads                      our forward pass
 *   tf_efficientdet_d0_512       F32: 0 / 0 / 1.1e-7               0 / 0 / 0
 *   tf_efficientdet_d0_384x256   (no stored P3 outputs)            0 / 0 / 1.1e-7
 *   tf_efficientdet_lite0_320    F16: 3.8e-6 / 3.7e-6 / 8.0e-6     0 / 0 / 3.5e-7
 *   efficientdet_d0_256          F16: 1.5e-7 / 2.3e-7 / 1.4e-5     0 / 0 / 1.5e-7
 * (the stored float16 head outputs are rounded; the reference computed its loss from float32 ones).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expectNoLeaks, type FixtureFile, fixturePath, readFixture } from '@effdet/testing';
import { readSafetensorsHeader } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { Anchors } from './anchors.js';
import { AnchorLabeler, type BatchLabels } from './labeler.js';
import { detectionLoss, lossOptionsFromConfig } from './loss.js';
import { createEfficientDet, type EfficientDet } from './model.js';
import { loadDetectorWeights } from './node.js';

const KEYS = ['loss', 'class_loss', 'box_loss'] as const;
const RTOL = 1e-3;

const dir = fixturePath('effdet');
const files = dir ? readdirSync(dir).filter((f) => f.endsWith('.io.safetensors')) : [];
const report: string[] = [];

function weightsFor(ioPath: string, name: string): string {
  for (const ext of ['.weights.safetensors', '.pth', '.legacy.pth']) {
    const p = join(dirname(ioPath), `${name}${ext}`);
    if (existsSync(p)) return p;
  }
  throw new Error(`no weights '${name}' next to ${ioPath}`);
}

function tensorOf(f: FixtureFile, name: string): tf.Tensor {
  const t = f.tensors.get(name);
  if (!t) throw new Error(`fixture has no '${name}'`);
  return tf.tensor(t.data, t.shape, 'float32');
}

/** Labels the fixture's padded targets and returns [loss, class_loss, box_loss] of the given head outputs. */
function losses(
  net: EfficientDet,
  labels: BatchLabels,
  classOut: tf.Tensor[],
  boxOut: tf.Tensor[],
): number[] {
  const r = detectionLoss({ classOut, boxOut }, labels, lossOptionsFromConfig(net.config));
  const v = [r.loss, r.classLoss, r.boxLoss].map((x) => x.dataSync()[0]);
  tf.dispose([r.loss, r.classLoss, r.boxLoss]);
  return v;
}

function check(name: string, source: string, got: number[], f: FixtureFile): void {
  const expected = KEYS.map((k) => f.tensors.get(k)?.data[0] as number);
  const rel = got.map((g, i) => Math.abs(g - expected[i]) / Math.abs(expected[i]));
  report.push(
    `${name} (${source}): ${KEYS.map((k, i) => `${k} ${got[i].toPrecision(7)} vs ${expected[i].toPrecision(7)} (rel ${rel[i].toExponential(1)})`).join(', ')}`,
  );
  KEYS.forEach((k, i) => {
    if (!(rel[i] <= RTOL))
      throw new Error(`${name} ${source}: ${k} = ${got[i]}, expected ${expected[i]} (rel ${rel[i]})`);
  });
}

/** The io files that hold targets and losses (from their headers). */
const cases = files.filter((file) => {
  const names = new Set(
    readSafetensorsHeader(new Uint8Array(readFileSync(join(dir as string, file)))).entries.map((e) => e.name),
  );
  return ['target.bbox', 'target.cls', ...KEYS].every((k) => names.has(k));
});

(cases.length ? describe : describe.skip)('detection loss parity with effdet DetBenchTrain', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });
  afterAll(() => {
    if (report.length) console.log(`loss parity (wasm)\n${report.join('\n')}`);
  });

  it('finds fixtures with targets and losses', () => {
    expect(cases.length).toBeGreaterThanOrEqual(4);
  });

  for (const file of cases) {
    it(`${file}: labels + loss from the stored head outputs, then from our forward pass`, async () => {
      const path = join(dir as string, file);
      const f = readFixture(path);
      const meta = f.metadata;
      const net = createEfficientDet(meta.model, {
        imageSize: [Number(meta.height), Number(meta.width)],
        numClasses: Number(meta.num_classes ?? 90),
      });
      try {
        await loadDetectorWeights(net, weightsFor(path, meta.weights));
        net.eval();
        const anchors = Anchors.fromConfig(net.config);
        const labeler = new AnchorLabeler(anchors, net.config.numClasses);
        anchors.dispose();
        const bbox = f.tensors.get('target.bbox');
        const cls = f.tensors.get('target.cls');
        if (!bbox || !cls) throw new Error('no targets');
        const [b, n] = bbox.shape;
        const labels = labeler.labelBatch(
          Array.from({ length: b }, (_, i) => bbox.data.subarray(i * n * 4, (i + 1) * n * 4)),
          Array.from({ length: b }, (_, i) => cls.data.subarray(i * n, (i + 1) * n)),
        );
        expect(Array.from(labels.numPositives).every((p) => p > 0)).toBe(true);
        await expectNoLeaks(() => {
          const levels = labeler.numLevels;
          const stored = Array.from(
            { length: levels },
            (_, l) => f.tensors.has(`class.${l}`) && f.tensors.has(`box.${l}`),
          );
          if (stored.every(Boolean)) {
            const classOut = stored.map((_, l) => tensorOf(f, `class.${l}`));
            const boxOut = stored.map((_, l) => tensorOf(f, `box.${l}`));
            check(
              file,
              `stored ${f.tensors.get('class.0')?.dtype} heads`,
              losses(net, labels, classOut, boxOut),
              f,
            );
            tf.dispose([...classOut, ...boxOut]);
          }
          const input = tensorOf(f, 'input');
          const out = net.forward(input);
          check(file, 'our forward pass', losses(net, labels, out.classOut, out.boxOut), f);
          tf.dispose([input, ...out.classOut, ...out.boxOut]);
        });
      } finally {
        net.dispose();
      }
    });
  }
});
