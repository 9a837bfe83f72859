/** Node-only file helpers (`@effdet/eval/node`); the main entry stays browser-safe. */
import { readFileSync, writeFileSync } from 'node:fs';
import { type CocoIndex, type CocoResult, loadCocoDataset, parseCocoResults } from './coco.js';
import { EvalArgumentError, parseJsonText } from './errors.js';
import { type CocoEvalResult, type EvaluateCocoOptions, evaluateCoco } from './report.js';

/** Reads a text file; a missing or unreadable file is an `EvalArgumentError` naming the function and the path. */
export function readTextFile(path: string, fn = 'readTextFile'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : String(e);
    throw new EvalArgumentError(
      `${fn}: argument 'path' expected a readable JSON file, got '${path}' (${why})`,
    );
  }
}

/** Reads and parses a JSON file; a syntax error names the file, the line and the column. */
export function readJsonFile(path: string, fn = 'readJsonFile'): unknown {
  return parseJsonText(readTextFile(path, fn), fn, path);
}

/** Reads and indexes a COCO annotation file (every record checked, see `CocoIndex`). */
export function readCocoDataset(path: string): CocoIndex {
  const data = readJsonFile(path, 'readCocoDataset');
  try {
    return loadCocoDataset(data as Parameters<typeof loadCocoDataset>[0]);
  } catch (e) {
    if (e instanceof EvalArgumentError) throw new EvalArgumentError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Reads a COCO results file (a JSON list). */
export function readCocoResults(path: string): CocoResult[] {
  const data = readJsonFile(path, 'readCocoResults');
  try {
    return parseCocoResults(data as CocoResult[]);
  } catch (e) {
    if (e instanceof EvalArgumentError) throw new EvalArgumentError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Evaluates a results file against an annotation file. Errors about a record name the file it came from. */
export function evaluateCocoFiles(
  gtPath: string,
  resultsPath: string,
  options: EvaluateCocoOptions = {},
): CocoEvalResult {
  const gt = readCocoDataset(gtPath);
  const results = readCocoResults(resultsPath);
  try {
    return evaluateCoco(gt, results, options);
  } catch (e) {
    if (e instanceof EvalArgumentError && /loadRes/.test(e.message)) {
      throw new EvalArgumentError(`${resultsPath}: ${e.message}`);
    }
    throw e;
  }
}

/** Writes any JSON-serialisable value (e.g. results or a report) with 2-space indentation. */
export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
