/**
 * parity.html: runs an EfficientDet on a PyTorch reference dump (`*.io.safetensors`, see
 * docs/parity-dump-format.md) in the browser and compares the raw head outputs `class.i` / `box.i` with the
 * fixture rule `max|a-b| / max(1, max|b|) <= rtol` (as `effdet parity` does in Node). The report is put on
 * `window.__effdetParity` and printed.
 *
 * Query: `io` (URL of the dump), `weights` (URL of a safetensors / .pth state dict), `backend` (default
 * webgl), `rtol` (default 1e-2: WebGL computes in lower precision than the 1e-3 of the Node checks),
 * `fuse` (0 for the reference, unfolded path; default 1: the folded-BN inference path the demo runs).
 */
import { createEfficientDet, loadRawStateDict } from '@effdet/effdet';
import { type DiffRow, diffArrays } from '@effdet/layers';
import { parseWeights, readSafetensors, toFloat32 } from '@effdet/weights';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendName, describeBackend, useBackend } from './backends.js';

/** One output's comparison (the fixture README's rule, as `effdet parity`). */
export type ParityRow = DiffRow;

export interface ParityReport {
  done: boolean;
  backend: string;
  backendInfo: string;
  model: string;
  rtol: number;
  rows: ParityRow[];
  pass: boolean;
  ms: { load: number; build: number; forward: number };
  error: string | null;
}

declare global {
  interface Window {
    __effdetParity: ParityReport;
  }
}

const params = new URLSearchParams(location.search);
const report: ParityReport = {
  done: false,
  backend: '',
  backendInfo: '',
  model: '',
  rtol: Number(params.get('rtol') ?? 1e-2),
  rows: [],
  pass: false,
  ms: { load: 0, build: 0, forward: 0 },
  error: null,
};
window.__effdetParity = report;
const out = document.getElementById('report') as HTMLPreElement;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function main(): Promise<void> {
  const ioUrl = params.get('io');
  const weightsUrl = params.get('weights');
  if (!ioUrl || !weightsUrl) throw new Error('give ?io=URL&weights=URL');
  report.backend = await useBackend((params.get('backend') ?? 'webgl') as BackendName);
  report.backendInfo = describeBackend();
  const t0 = performance.now();
  const [ioBytes, wBytes] = await Promise.all([fetchBytes(ioUrl), fetchBytes(weightsUrl)]);
  const io = readSafetensors(ioBytes);
  const weights = await parseWeights(wBytes);
  const meta = io.metadata;
  report.model = meta.model;
  const t1 = performance.now();
  const net = createEfficientDet(meta.model, {
    imageSize: [Number(meta.height), Number(meta.width)],
    numClasses: Number(meta.num_classes ?? 90),
  });
  try {
    loadRawStateDict(net, weights);
    net.eval().fuseForInference(params.get('fuse') !== '0');
    const t2 = performance.now();
    const inputRaw = io.tensors.input;
    const [b, h, w, c] = inputRaw.shape;
    const input = tf.tensor4d(toFloat32(inputRaw), [b, h, w, c]);
    const outputs = net.forward(input);
    const groups: [string, tf.Tensor[]][] = [
      ['class', outputs.classOut],
      ['box', outputs.boxOut],
    ];
    for (const [prefix, ts] of groups) {
      for (const [i, t] of ts.entries()) {
        const ref = io.tensors[`${prefix}.${i}`];
        if (ref)
          report.rows.push(
            diffArrays(`${prefix}.${i}`, t.shape, await t.data(), toFloat32(ref), report.rtol),
          );
      }
    }
    report.ms = { load: t1 - t0, build: t2 - t1, forward: performance.now() - t2 };
    tf.dispose([input, ...outputs.classOut, ...outputs.boxOut]);
  } finally {
    net.dispose();
  }
  report.pass = report.rows.length > 0 && report.rows.every((r) => r.pass);
}

main()
  .catch((e) => {
    report.error = e instanceof Error ? e.message : String(e);
    console.error(e);
  })
  .finally(() => {
    report.done = true;
    document.body.dataset.state = report.error ? 'error' : 'done';
    out.textContent = [
      `${report.model} on ${report.backendInfo}, rtol ${report.rtol}: ${report.pass ? 'PASS' : 'FAIL'}`,
      ...report.rows.map(
        (r) =>
          `${r.name.padEnd(8)} [${r.shape.join(',')}]`.padEnd(28) +
          ` max abs ${r.maxAbs.toExponential(2)}  max rel ${r.maxRel.toExponential(2)}  ${r.pass ? 'PASS' : 'FAIL'}`,
      ),
      report.error ? `error: ${report.error}` : '',
    ].join('\n');
  });
