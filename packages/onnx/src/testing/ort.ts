/**
 * Test helper: onnxruntime-node loaded in Node's main realm. Jest runs tests in a separate realm, and the
 * native binding creates its output typed arrays in the main one, so onnxruntime-common's `instanceof
 * Float32Array` checks fail when the package is loaded through Jest's module registry (jestjs/jest#2549). Loading
 * it with the main realm's require keeps the binding and its checks in one realm.
 */
import { createRequire } from 'node:module';
import * as vm from 'node:vm';
import type * as Ort from 'onnxruntime-node';

let cached: typeof Ort | null = null;

export function mainRealmOrt(): typeof Ort {
  if (cached) return cached;
  const path = createRequire(__filename).resolve('onnxruntime-node');
  const main = (vm.runInThisContext('process') as NodeJS.Process & { mainModule?: NodeJS.Module }).mainModule;
  cached = (main ? main.require(path) : createRequire(__filename)(path)) as typeof Ort;
  return cached;
}
