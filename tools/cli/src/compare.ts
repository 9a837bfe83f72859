/** Parity tables for the CLI; the comparison itself (`diffArrays`) lives in `@effdet/layers`, for the browser too. */
import type { DiffRow } from '@effdet/layers';

export type { DiffRow } from '@effdet/layers';
export { diffArrays } from '@effdet/layers';

export function formatDiffTable(rows: DiffRow[]): string {
  const w = Math.max(8, ...rows.map((r) => r.name.length));
  const head = `${'tensor'.padEnd(w)}  ${'shape'.padEnd(18)}  ${'max abs'.padStart(10)}  ${'max rel'.padStart(10)}  result`;
  const lines = rows.map(
    (r) =>
      `${r.name.padEnd(w)}  ${`[${r.shape.join(',')}]`.padEnd(18)}  ${r.maxAbs.toExponential(2).padStart(10)}  ` +
      `${r.maxRel.toExponential(2).padStart(10)}  ${r.pass ? 'PASS' : 'FAIL'}${r.note ? `  (${r.note})` : ''}`,
  );
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}
