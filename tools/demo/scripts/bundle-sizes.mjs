// Browser bundle size of each @effdet package's browser entry (`import * as m from '@effdet/x'`, everything
// exported kept), minified by Vite / Rollup, raw and gzip: "own" with the other @effdet packages and TF.js
// external, "with deps" with only TF.js external. Then the built demo (`dist/`, `npm run build` first).
// Usage: node tools/demo/scripts/bundle-sizes.mjs  (prints a Markdown table)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const root = resolve(import.meta.dirname, '../../..');
const packages = readdirSync(join(root, 'packages'))
  .filter((p) => p !== 'onnx')
  .sort();

async function bundle(pkg, external) {
  const entry = join(root, 'packages', pkg, 'dist', 'index.js');
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    root,
    build: {
      write: false,
      target: 'es2022',
      minify: 'esbuild',
      lib: { entry, formats: ['es'], fileName: pkg },
      rollupOptions: { external, treeshake: { moduleSideEffects: 'no-external' } },
    },
  });
  const chunks = (Array.isArray(out) ? out : [out])
    .flatMap((o) => o.output)
    .filter((c) => c.type === 'chunk');
  const code = chunks.map((c) => c.code).join('\n');
  return { raw: Buffer.byteLength(code), gzip: gzipSync(code, { level: 9 }).length };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const rows = [];
for (const pkg of packages) {
  const own = await bundle(
    pkg,
    (id) => id.startsWith('@tensorflow/') || (id.startsWith('@effdet/') && id !== `@effdet/${pkg}`),
  );
  const all = await bundle(pkg, (id) => id.startsWith('@tensorflow/'));
  rows.push(`| @effdet/${pkg} | ${kb(own.raw)} | ${kb(own.gzip)} | ${kb(all.raw)} | ${kb(all.gzip)} |`);
}
console.log(
  '| package (browser entry) | own, min | own, gzip | with @effdet deps, min | with @effdet deps, gzip |',
);
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);

const dist = join(root, 'tools', 'demo', 'dist');
const files = [];
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
};
try {
  walk(dist);
} catch {
  console.log('\n(no tools/demo/dist: run `npm run build` first)');
  process.exit(0);
}
console.log('\n| demo file (tools/demo/dist) | min | gzip |');
console.log('|---|---|---|');
let js = 0;
let jsGz = 0;
for (const p of files.sort()) {
  const b = readFileSync(p);
  const gz = gzipSync(b, { level: 9 }).length;
  if (p.endsWith('.js')) {
    js += b.length;
    jsGz += gz;
  }
  console.log(`| ${p.slice(dist.length + 1)} | ${kb(b.length)} | ${kb(gz)} |`);
}
console.log(`| all JS | ${kb(js)} | ${kb(jsGz)} |`);
