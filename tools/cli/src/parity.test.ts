import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithBackends, describeWithFixture, expectNoLeaks, fixturesDir } from '@effdet/testing';
import { readSafetensorsHeader } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { runParity } from './parity.js';

/** Every effdet fixture, with the weights in a different format each time. */
const CASES: [string, string][] = [
  ['effdet/tf_efficientdet_d0_512.io.safetensors', 'tf_efficientdet_d0_s1.weights.safetensors'],
  ['effdet/tf_efficientdet_lite0_320.io.safetensors', 'tf_efficientdet_lite0_s2.weights.safetensors'],
  ['effdet/efficientdet_d0_256.io.safetensors', 'efficientdet_d0_s3.legacy.pth'],
  ['effdet/tf_efficientdet_d0_384x256.io.safetensors', 'tf_efficientdet_d0_s1.pth'],
];

for (const [ioRel, weights] of CASES) {
  describeWithFixture(ioRel, `effdet parity ${ioRel}`, (ioPath) => {
    describeWithBackends('every tensor of the dump', () => {
      it(`passes with ${weights}`, async () => {
        const r = await expectNoLeaks(() => runParity({ io: ioPath, weights: join(ioPath, '..', weights) }));
        const failed = r.rows.filter((x) => !x.pass).map((x) => `${x.name}: ${x.maxRel} ${x.note ?? ''}`);
        expect(failed).toEqual([]);
        const names = r.rows.map((x) => x.name);
        expect(names).toEqual(
          expect.arrayContaining([
            'class.1',
            'box.4',
            'detections',
            'detections_scaled',
            'detections_soft_nms',
            'loss',
            'class_loss',
            'box_loss',
          ]),
        );
        if (!ioRel.includes('384x256')) {
          expect(names).toEqual(
            expect.arrayContaining(['backbone.0', 'fpn_extra.1', 'fpn_cell0_node.7', 'fpn.4', 'class.0']),
          );
        }
        expect(r.pass).toBe(true);
      });
    });
  });
}

describeWithFixture(
  'effdet/tf_efficientdet_lite0_320.io.safetensors',
  'effdet parity, folded inference path',
  (ioPath) => {
    describeWithBackends('fused kernels', () => {
      it('passes', async () => {
        const r = await runParity({ io: ioPath, fuse: true });
        expect(r.rows.filter((x) => !x.pass).map((x) => x.name)).toEqual([]);
      });
    });
  },
);

describeWithFixture(
  'efficientnet/tf_efficientnet_b0_cls_224.io.safetensors',
  'effdet parity on a backbone dump',
  (ioPath) => {
    it('compares logits and pre_logits (weights found from the metadata)', async () => {
      await tf.setBackend('wasm');
      const r = await runParity({ io: ioPath });
      expect(r.rows.map((x) => x.name)).toEqual(['logits', 'pre_logits']);
      expect(r.pass).toBe(true);
    });
  },
);

describeWithFixture(
  'effdet/tf_efficientdet_lite0_320.io.safetensors',
  'effdet parity, training losses',
  (ioPath) => {
    it('reports loss rows by relative error and fails when the dump disagrees', async () => {
      await tf.setBackend('wasm');
      const weights = join(ioPath, '..', 'tf_efficientdet_lite0_s2.weights.safetensors');
      const good = await runParity({ io: ioPath, weights });
      const losses = good.rows.filter((r) => ['loss', 'class_loss', 'box_loss'].includes(r.name));
      expect(losses.map((r) => [r.name, r.pass])).toEqual([
        ['loss', true],
        ['class_loss', true],
        ['box_loss', true],
      ]);
      expect(Math.max(...losses.map((r) => r.maxRel))).toBeLessThan(1e-5);
      // A copy of the dump whose box_loss is 0.2% off: only that row fails.
      const bytes = new Uint8Array(readFileSync(ioPath));
      const header = readSafetensorsHeader(bytes);
      const entry = header.entries.find((e) => e.name === 'box_loss');
      if (!entry) throw new Error('no box_loss in the dump');
      const view = new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset + entry.begin, 4);
      view.setFloat32(0, view.getFloat32(0, true) * 1.002, true);
      const dir = mkdtempSync(join(tmpdir(), 'effdet-parity-'));
      try {
        const bad = join(dir, 'lite0.io.safetensors');
        writeFileSync(bad, bytes);
        const r = await runParity({ io: bad, weights });
        expect(r.rows.filter((x) => !x.pass).map((x) => x.name)).toEqual(['box_loss']);
        expect(r.rows.find((x) => x.name === 'box_loss')?.maxRel).toBeCloseTo(0.002 / 1.002, 4);
        expect(r.pass).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe('effdet parity errors', () => {
  it('names the problem', async () => {
    await expect(runParity({ io: '/nonexistent.io.safetensors' })).rejects.toThrow(/nonexistent/);
    const seg = join(fixturesDir(), 'segmentation/unet_tf_efficientnet_b0_256.io.safetensors');
    if (existsSync(seg)) {
      // routed to the segmentation parity (arch / encoder metadata): with no weights file next to the copy it
      // fails on the smp weights it looks for, not on a missing 'model'
      const dir = mkdtempSync(join(tmpdir(), 'parity-seg-'));
      try {
        const copy = join(dir, 'unet.io.safetensors');
        copyFileSync(seg, copy);
        await expect(runParity({ io: copy })).rejects.toThrow(/unet_tf_efficientnet_b0_256_s41/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

const main = join(process.cwd(), 'tools/cli/dist/main.js');
(existsSync(main) ? describe : describe.skip)('effdet parity command (built CLI)', () => {
  it('prints a table and exits 0 on PASS, 1 on FAIL', () => {
    const io = join(fixturesDir(), 'effdet/tf_efficientdet_lite0_320.io.safetensors');
    const out = execFileSync('node', [main, 'parity', '--io', io], { encoding: 'utf8' });
    expect(out).toMatch(/detections_soft_nms .* PASS/);
    expect(out).toMatch(/box_loss .* PASS/);
    expect(out).toMatch(/PASS: 34\/34 tensors/);
    let code = 0;
    try {
      execFileSync('node', [main, 'parity', '--io', io, '--rtol', '1e-9'], { encoding: 'utf8' });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(1);
  });
});

describeWithFixture(
  'tf_checkpoint/efficientdet-d0/model.index',
  'effdet parity with the official TF checkpoint',
  (index) => {
    it('efficientdet-d0 (EMA values, mapped names) passes against tf_efficientdet_d0_512', async () => {
      await tf.setBackend('wasm');
      const r = await runParity({
        io: join(fixturesDir(), 'effdet/tf_efficientdet_d0_512.io.safetensors'),
        weights: join(index, '..'),
      });
      expect(r.rows.filter((x) => !x.pass).map((x) => x.name)).toEqual([]);
      expect(r.rows).toHaveLength(34);
    });
  },
);
