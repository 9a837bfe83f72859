// Rewrites of our exported graph, to time what one construct of the exporter costs on onnxruntime:
//
//   node tools/bench/onnx_vs_torch/make_variants.mjs [/tmp/torchref/ours_d0.onnx]
//
// writes next to the input:
//   *_se_bcast.onnx   squeeze-excite gate multiplied by broadcasting ([1,C,1,1] * [1,C,H,W], as PyTorch does)
//                     instead of Resize (nearest) to [1,C,H,W] first
//   *_head_conv.onnx  head outputs as 1x1 Conv (NCHW) + Transpose to NHWC, instead of Transpose of the 64-channel
//                     input + Concat(ones) + MatMul with the bias as an extra weight row
// Then: node tools/bench/onnx_vs_torch/compare.mjs ours_d0.onnx ours_d0_se_bcast.onnx ours_d0_head_conv.onnx
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const { decodeModel, encodeModel } = await import(join(root, 'packages/onnx/dist/index.js'));

const src = process.argv[2] ?? '/tmp/torchref/ours_d0.onnx';
const bytes = readFileSync(src);
const out = (suffix) =>
  join(
    dirname(src),
    src
      .split('/')
      .pop()
      .replace(/\.onnx$/, `_${suffix}.onnx`),
  );

function seBroadcast() {
  const m = decodeModel(bytes);
  const g = m.graph;
  const rename = new Map();
  g.node = g.node.filter((n) => {
    if (n.op_type === 'Resize' && /\.se\//.test(n.name)) {
      rename.set(n.output[0], n.input[0]);
      return false;
    }
    return true;
  });
  for (const n of g.node) n.input = n.input.map((i) => rename.get(i) ?? i);
  console.log(`se_bcast: removed ${rename.size} Resize nodes`);
  writeFileSync(out('se_bcast'), encodeModel(m));
}

function headConv() {
  const m = decodeModel(bytes);
  const g = m.graph;
  const init = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n])));
  let count = 0;
  const drop = new Set();
  const add = [];
  for (const mm of g.node) {
    if (mm.op_type !== 'MatMul') continue;
    const cat = producer.get(mm.input[0]);
    const tr = cat && producer.get(cat.input[0]);
    const w = init.get(mm.input[1]);
    if (cat?.op_type !== 'Concat' || tr?.op_type !== 'Transpose' || !w) continue;
    const [k, co] = w.dims;
    const ci = k - 1;
    const raw = w.raw_data;
    const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const wc = new Float32Array(co * ci);
    for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) wc[o * ci + i] = f[i * co + o];
    const bias = f.slice(ci * co, ci * co + co);
    const tag = `${mm.name}_as_conv`;
    g.initializer.push(
      { name: `${tag}.w`, dims: [co, ci, 1, 1], data_type: 1, raw_data: new Uint8Array(wc.buffer) },
      { name: `${tag}.b`, dims: [co], data_type: 1, raw_data: new Uint8Array(bias.buffer) },
    );
    const ints = (name, v) => ({ name, type: 7, ints: v });
    add.push({
      at: mm,
      nodes: [
        {
          name: `${tag}/Conv`,
          op_type: 'Conv',
          input: [tr.input[0], `${tag}.w`, `${tag}.b`],
          output: [`${tag}/y`],
          attribute: [ints('kernel_shape', [1, 1])],
        },
        {
          name: `${tag}/Transpose`,
          op_type: 'Transpose',
          input: [`${tag}/y`],
          output: [mm.output[0]],
          attribute: [ints('perm', [0, 2, 3, 1])],
        },
      ],
    });
    drop.add(mm).add(cat).add(tr);
    count++;
  }
  const nodes = [];
  for (const n of g.node) {
    const a = add.find((x) => x.at === n);
    if (a) nodes.push(...a.nodes);
    else if (!drop.has(n)) nodes.push(n);
  }
  g.node = nodes;
  const used = new Set(g.node.flatMap((n) => n.input));
  g.initializer = g.initializer.filter((t) => used.has(t.name));
  console.log(`head_conv: rewrote ${count} MatMul heads`);
  writeFileSync(out('head_conv'), encodeModel(m));
}

seBroadcast();
headConv();
