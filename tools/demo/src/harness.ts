/**
 * Test harness of the demo: the built bundle (rebuilt with Vite when missing or older than its sources), a
 * tiny static server on 127.0.0.1 for it (plus read-only `*.safetensors` fixtures under `/fixtures/`), and
 * Debian's Chromium driven by playwright-core with SwiftShader WebGL.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { repoRoot } from './assets.js';

export const ROOT = repoRoot(__dirname);
export const DEMO_DIR = join(ROOT, 'tools', 'demo');
export const DIST = join(DEMO_DIR, 'dist');

/** Chromium: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** True on CI (`CI=true` / `CI=1`), where a missing browser is a failure, not a skip. */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** The flags the issue asks for, plus what SwiftShader WebGL needs in headless mode. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-gl=angle',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const f of readdirSync(path)) {
    if (f === 'node_modules' || f === 'dist') continue;
    t = Math.max(t, newestMtime(join(path, f)));
  }
  return t;
}

/** The demo's sources and shipped models: a newer file makes `dist/` stale. */
function sourcesMtime(): number {
  const inputs = ['web', 'src/assets.ts', 'index.html', 'parity.html', 'vite.config.ts', 'package.json'];
  const packages = readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p, 'dist'));
  return Math.max(
    ...inputs.map((p) => newestMtime(join(DEMO_DIR, p))),
    newestMtime(join(ROOT, 'models')),
    ...packages.map((p) => (existsSync(join(p, 'index.js')) ? statSync(join(p, 'index.js')).mtimeMs : 0)),
  );
}

/**
 * Makes sure `tools/demo/dist` is built and fresh (`npm run build` builds it; this rebuilds with Vite when it
 * is missing or older than its sources, which needs the packages' `dist/` from `npm run build`).
 */
export function ensureDemoBuilt(): void {
  const index = join(DIST, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= sourcesMtime()) return;
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: DEMO_DIR, stdio: 'inherit' });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
};

/** Resolves `rel` inside `base`, or null when it would leave it. */
function inside(base: string, rel: string): string | null {
  const p = resolve(base, `.${sep}${rel}`);
  return p === base || p.startsWith(base + sep) ? p : null;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `dist/` at `/`, the `*.safetensors` files of `fixtures` (if given) at `/fixtures/` and each folder of
 * `extra` at `/extra/NAME/`, on 127.0.0.1.
 */
export async function serveDemo(
  fixtures: string | null,
  extra: Record<string, string> = {},
): Promise<StaticServer> {
  const dist = resolve(DIST);
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file: string | null = null;
    const m = /^\/extra\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const dir = extra[m[1]];
      if (dir) file = inside(resolve(dir), m[2]);
    } else if (path.startsWith('/fixtures/')) {
      const rel = path.slice('/fixtures/'.length);
      if (fixtures && rel.endsWith('.safetensors')) file = inside(resolve(fixtures), rel);
    } else {
      file = inside(dist, path === '/' ? 'index.html' : path.slice(1));
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-store',
    });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('serveDemo: no TCP address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** Chromium with a fresh profile (`--user-data-dir` in a temporary folder, removed on close). */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'effdet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 760 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
