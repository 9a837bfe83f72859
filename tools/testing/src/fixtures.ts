import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function repoRoot(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`repoRoot: no nx.json above ${process.cwd()}`);
    dir = up;
  }
  return dir;
}

/** The reference fixtures folder: `EFFDET_FIXTURES`, else `../shared/fixtures` from the repo root. */
export function fixturesDir(): string {
  return resolve(process.env.EFFDET_FIXTURES ?? join(repoRoot(), '..', 'shared', 'fixtures'));
}

/** Path of one fixture file, or null (with the reason logged once) when the folder is missing. */
export function fixturePath(rel: string): string | null {
  const p = join(fixturesDir(), rel);
  return existsSync(p) ? p : null;
}

const warned = new Set<string>();

/**
 * `describe` when the fixture exists, else `describe.skip` with a message naming the missing path
 * (`.ci/run` separately fails when the folder is missing, so CI never silently skips).
 */
export function describeWithFixture(rel: string, name: string, fn: (path: string) => void): void {
  const p = fixturePath(rel);
  if (p) {
    describe(name, () => fn(p));
    return;
  }
  const missing = join(fixturesDir(), rel);
  if (!warned.has(missing)) {
    warned.add(missing);
    console.warn(`skipping '${name}': fixture ${missing} is missing (set EFFDET_FIXTURES)`);
  }
  describe.skip(`${name} (fixture missing: ${missing})`, () => {
    it('needs the fixture', () => undefined);
  });
}
