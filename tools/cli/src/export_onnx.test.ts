import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOnnxModel, readOnnxMetadata } from '@effdet/onnx';
import { loadOrt } from '@effdet/onnx/node';
import { describeWithFixture } from '@effdet/testing';
import { EXPORT_ONNX_USAGE, runExportOnnx, runOnnxParity } from './export_onnx.js';

function capture() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } },
    out: () => out,
    err: () => err,
  };
}

describe('effdet export-onnx', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effdet-export-onnx-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports a detector with pre- and post-processing, checks it and verifies it on onnxruntime', async () => {
    const c = capture();
    const out = join(dir, 'det.onnx');
    const code = await runExportOnnx(
      [
        'export-onnx',
        '--model',
        'test_efficientdet',
        '--out',
        out,
        '--with-postprocess',
        '--with-preprocess',
        '--dynamic-batch',
      ],
      c.io,
    );
    expect(c.out()).toContain('structural check: ok');
    // random weights: near-ties may reorder a row or two (the fixture rule allows 98 of 100)
    expect(c.out()).toMatch(
      /onnxruntime vs TF\.js: PASS \(detections: rows matched the TypeScript post-processing: (98|99|100)\/100, (98|99|100)\/100\)/,
    );
    expect(c.err()).toContain('random weights');
    expect(code).toBe(0);
    const bytes = new Uint8Array(readFileSync(out));
    expect(checkOnnxModel(bytes).errors).toEqual([]);
    const meta = readOnnxMetadata(bytes);
    expect(meta.model).toBe('test_efficientdet');
    expect(meta.dynamic_batch).toBe('true');
  });

  it('exports a backbone as float16 features (JSON summary)', async () => {
    const c = capture();
    const code = await runExportOnnx(
      [
        '--model',
        'effdet_test_efficientnet',
        '--out',
        join(dir, 'net.onnx'),
        '--task',
        'features',
        '--input-size',
        '64x48',
        '--json',
      ],
      c.io,
    );
    expect(code).toBe(0);
    const summary = JSON.parse(c.out());
    expect(summary.outputs.map((o: { name: string }) => o.name)).toEqual([
      'features.0',
      'features.1',
      'features.2',
      'features.3',
      'features.4',
    ]);
    expect(summary.inputs[0].shape).toEqual([1, 64, 48, 3]);
    expect(summary.verify.pass).toBe(true);
  });

  it('usage and bad arguments', async () => {
    const c = capture();
    expect(await runExportOnnx(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain(EXPORT_ONNX_USAGE);
    await expect(runExportOnnx(['--model', 'test_efficientdet'], c.io)).rejects.toThrow(
      /--out FILE.onnx is required/,
    );
    await expect(runExportOnnx(['--model', 'nope', '--out', join(dir, 'x.onnx')], c.io)).rejects.toThrow(
      /unknown model 'nope'/,
    );
    await expect(
      runExportOnnx(
        ['--model', 'effdet_test_efficientnet', '--out', join(dir, 'x.onnx'), '--with-postprocess'],
        c.io,
      ),
    ).rejects.toThrow(
      /--with-postprocess needs a detector, effdet_test_efficientnet is a efficientnet model/,
    );
    await expect(
      runExportOnnx(['--model', 'test_efficientdet', '--out', join(dir, 'x.onnx'), '--opset', '11'], c.io),
    ).rejects.toThrow(/opset must be an integer in 13..21, got 11/);
  });

  it('loadOrt works inside a sandboxed realm (Jest)', async () => {
    const ort = await loadOrt();
    expect(typeof ort.InferenceSession.create).toBe('function');
  });
});

describeWithFixture(
  'effdet/tf_efficientdet_lite0_320.io.safetensors',
  'effdet parity --runtime onnx',
  (ioPath) => {
    it('the ONNX export reproduces the dump: head outputs, detections, detections_scaled', async () => {
      const r = await runOnnxParity({ io: ioPath });
      expect(r.rows.map((x) => x.name)).toEqual([
        'class.0',
        'class.1',
        'class.2',
        'class.3',
        'class.4',
        'box.0',
        'box.1',
        'box.2',
        'box.3',
        'box.4',
        'detections_scaled (onnx)',
        'detections (onnx)',
      ]);
      expect(r.rows.filter((x) => !x.pass)).toEqual([]);
      expect(r.pass).toBe(true);
    });
  },
);
