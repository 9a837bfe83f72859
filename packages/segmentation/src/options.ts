import { check } from '@effdet/layers';

/** Option names every architecture takes. */
export const COMMON_KEYS = [
  'encoderName',
  'encoderDepth',
  'inChannels',
  'classes',
  'activation',
  'auxParams',
  'encoderOptions',
];

/** Rejects unknown option names, listing the valid ones. */
export function checkOptions(options: object, keys: string[], where: string): void {
  check(
    typeof options === 'object' && options !== null,
    () => `${where}: options must be an object with at least encoderName, got ${options}`,
  );
  const unknown = Object.keys(options).filter((k) => !keys.includes(k));
  check(
    unknown.length === 0,
    () =>
      `${where}: unknown option(s) ${unknown.map((k) => `'${k}'`).join(', ')}; valid options: ${keys.join(', ')}`,
  );
}

/** `classes` (default 1) as a positive integer. */
export function checkClasses(classes: number | undefined, where: string): number {
  const c = classes ?? 1;
  check(Number.isInteger(c) && c > 0, () => `${where}: classes must be a positive integer, got ${classes}`);
  return c;
}
