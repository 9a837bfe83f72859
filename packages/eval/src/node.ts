/** Node-only file helpers (`@effdet/eval/node`); the main entry stays browser-safe. */
import { readFileSync, writeFileSync } from 'node:fs';
import { type CocoIndex, type CocoResult, loadCocoDataset, parseCocoResults } from './coco.js';
import { type CocoEvalResult, type EvaluateCocoOptions, evaluateCoco } from './report.js';

/** Reads and indexes a COCO annotation file. */
export function readCocoDataset(path: string): CocoIndex {
  return loadCocoDataset(readFileSync(path, 'utf8'));
}

/** Reads a COCO results file (a JSON list). */
export function readCocoResults(path: string): CocoResult[] {
  return parseCocoResults(readFileSync(path, 'utf8'));
}

/** Evaluates a results file against an annotation file. */
export function evaluateCocoFiles(
  gtPath: string,
  resultsPath: string,
  options: EvaluateCocoOptions = {},
): CocoEvalResult {
  return evaluateCoco(readCocoDataset(gtPath), readCocoResults(resultsPath), options);
}

/** Writes any JSON-serialisable value (e.g. results or a report) with 2-space indentation. */
export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
