/** RFC 4180 CSV: comma separated, double-quoted fields with `""` escapes, CRLF or LF line ends. */
import { argError } from './errors.js';

/** Parses CSV text into rows of fields (a trailing newline does not add an empty row). */
export function parseCsv(text: string): string[][] {
  if (typeof text !== 'string') throw argError('parseCsv', 'text', 'CSV text', text);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  const n = text.length;
  let quoted = false;
  let any = false;
  const endField = () => {
    row.push(field);
    field = '';
  };
  const endRow = () => {
    endField();
    rows.push(row);
    row = [];
    any = false;
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1; // BOM
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    any = true;
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      endField();
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      endRow();
      i += 2;
    } else if (c === '\n' || c === '\r') {
      endRow();
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) throw argError('parseCsv', 'text', 'CSV with closed quotes', text);
  if (any || row.length > 0 || field !== '') endRow();
  return rows;
}

/** Parses CSV with a header row into objects keyed by the header names. */
export function parseCsvObjects(text: string): Record<string, string>[] {
  const rows = parseCsv(text);
  if (rows.length === 0) return [];
  const header = rows[0];
  return rows.slice(1).map((r) => {
    const o: Record<string, string> = {};
    header.forEach((h, j) => {
      o[h] = r[j] ?? '';
    });
    return o;
  });
}
