/**
 * The demo bundle is browser-clean: no Node built-in is imported by any chunk (Vite would only stub it), and
 * the packages' `sideEffects: false` lets the unused parts (training, .pth unpickling, TF checkpoints, COCO
 * evaluation) drop out of the demo page's chunks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { DIST, ensureDemoBuilt, ROOT } from './harness.js';

/** Text that only the named part of a package holds (error messages survive minification). */
const UNUSED_PARTS: [string, string, string][] = [
  [
    '@effdet/effdet DetectionTrainer',
    'packages/effdet/dist/trainer.js',
    'need one boxes and one classes entry per image',
  ],
  ['@effdet/layers Trainer', 'packages/layers/dist/trainer.js', 'options.microBatches must be an integer'],
  ['@effdet/weights .pth unpickler', 'packages/weights/dist/pickle.js', 'unpickle'],
  [
    '@effdet/weights TF checkpoints',
    'packages/weights/dist/tf_checkpoint.js',
    "readTfCheckpoint: no tensor named '",
  ],
  ['@effdet/eval COCO evaluation', 'packages/eval/dist/cocoeval.js', 'maxDets'],
];

describe('demo bundle', () => {
  let chunks: { name: string; code: string }[] = [];

  beforeAll(() => {
    ensureDemoBuilt();
    const dir = join(DIST, 'assets');
    chunks = readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => ({ name: f, code: readFileSync(join(dir, f), 'utf8') }));
  }, 600_000);

  it('has the demo and parity pages and their chunks', () => {
    expect(chunks.some((c) => c.name.startsWith('main-'))).toBe(true);
    expect(chunks.some((c) => c.name.startsWith('parity-'))).toBe(true);
    const index = readFileSync(join(DIST, 'index.html'), 'utf8');
    expect(index).toMatch(/<script type="module"[^>]*src="\.\/assets\/main-[^"]+\.js"/);
    for (const f of ['wasm/tfjs-backend-wasm.wasm', 'models/shapes/model.json', 'models/index.json']) {
      expect(readFileSync(join(DIST, f)).length).toBeGreaterThan(0);
    }
  });

  it('imports no Node built-in and never calls process.binding', () => {
    const names = builtinModules.flatMap((m) => [m, `node:${m}`]).map((m) => m.replace(/[/]/g, '\\/'));
    const imports = new RegExp(
      `(?:from\\s*|import\\s*\\(\\s*|import\\s*)["'](?:${names.join('|')}|node:[^"']+)["']`,
      'g',
    );
    for (const c of chunks) {
      expect({ chunk: c.name, imports: c.code.match(imports) ?? [] }).toEqual({ chunk: c.name, imports: [] });
      expect({ chunk: c.name, binding: c.code.includes('process.binding') }).toEqual({
        chunk: c.name,
        binding: false,
      });
    }
  });

  it('holds require() calls only in the Node-only branches of TF.js (never run in a browser)', () => {
    // tfjs-core's PlatformNode (set up only when IS_NODE) and the Node branch of the wasm backend's
    // emscripten glue; anything else would be a Node dependency pulled into the browser bundle.
    const tfjsNodePlatform = ['importFetch:()=>require("node-fetch")', 'this.util=require("util")'];
    for (const c of chunks) {
      for (const m of c.code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)) {
        const at = m.index ?? 0;
        const before = c.code.slice(Math.max(0, at - 400), at);
        const around = c.code.slice(Math.max(0, at - 40), at + m[0].length);
        const known =
          before.includes('ENVIRONMENT_IS_NODE') ||
          tfjsNodePlatform.some((snippet) => around.endsWith(snippet));
        expect({ chunk: c.name, require: m[1], known }).toEqual({
          chunk: c.name,
          require: m[1],
          known: true,
        });
      }
    }
  });

  it.each(UNUSED_PARTS)(
    'leaves out %s (tree-shaken thanks to sideEffects: false)',
    (_what, source, marker) => {
      // the marker really is in that part's code
      expect(readFileSync(join(ROOT, source), 'utf8')).toContain(marker);
      for (const c of chunks.filter((x) => !x.name.startsWith('parity-'))) {
        expect({ chunk: c.name, found: c.code.includes(marker) }).toEqual({ chunk: c.name, found: false });
      }
    },
  );

  it("declares sideEffects: false in every library package's package.json", () => {
    for (const p of readdirSync(join(ROOT, 'packages'))) {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8')) as {
        sideEffects?: unknown;
      };
      expect({ package: p, sideEffects: pkg.sideEffects }).toEqual({ package: p, sideEffects: false });
    }
  });
});
