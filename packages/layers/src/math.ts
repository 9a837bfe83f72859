/** Python's round(): halves go to the even neighbour (timm uses it for SE channel counts). */
export function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * timm's `make_divisible`: round `v` to the nearest multiple of `divisor` (at least `minValue`), adding one
 * more `divisor` when rounding went below `roundLimit * v`.
 */
export function makeDivisible(v: number, divisor = 8, minValue?: number, roundLimit = 0.9): number {
  const min = minValue ?? divisor;
  let newV = Math.max(min, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (newV < roundLimit * v) newV += divisor;
  return newV;
}
