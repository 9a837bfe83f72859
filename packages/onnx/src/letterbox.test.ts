import { resizeRgbPil } from '@effdet/effdet';
import { letterboxInto } from './letterbox.js';

/** A deterministic pseudo-random image. */
function image(width: number, height: number, seed: number) {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height };
}

describe('letterboxInto', () => {
  it('equals resizeRgbPil bit for bit (shrink, enlarge, one axis, none) and pads with the fill colour', () => {
    const cases: [number, number, number, number][] = [
      [64, 48, 51, 38], // shrink by 1.25 (2-3 taps)
      [90, 40, 30, 13], // shrink by 3 (7 taps)
      [20, 10, 64, 32], // enlarge
      [33, 77, 21, 50],
      [40, 30, 40, 17], // height only
      [40, 30, 25, 30], // width only
      [16, 16, 16, 16], // no resize
    ];
    cases.forEach(([w, h, rw, rh], n) => {
      const src = image(w, h, n + 1);
      const ref = resizeRgbPil(src, rw, rh);
      const th = rh + 3;
      const tw = rw + 2;
      const dst = new Uint8Array(2 * th * tw * 3).fill(77);
      letterboxInto(src, rw, rh, dst, th * tw * 3, th, tw, [1, 2, 3]);
      let bad = 0;
      for (let y = 0; y < th; y++) {
        for (let x = 0; x < tw; x++) {
          for (let c = 0; c < 3; c++) {
            const v = dst[th * tw * 3 + (y * tw + x) * 3 + c];
            const e = y < rh && x < rw ? ref.data[(y * rw + x) * 3 + c] : c + 1;
            if (v !== e) bad++;
          }
        }
      }
      expect(`${w}x${h}->${rw}x${rh}: ${bad} wrong`).toBe(`${w}x${h}->${rw}x${rh}: 0 wrong`);
      expect(dst.subarray(0, th * tw * 3).every((v) => v === 77)).toBe(true); // nothing before the offset
    });
  });
});
