import { deflateSync } from 'node:zlib';
import { encodePng } from '@effdet/effdet/node';
import { generateScene, vocPalette } from '@effdet/shapes';
import { encodeIndexedPng } from '@effdet/shapes/node';
import { decodeMaskPng } from './mask_png.js';

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  let c = 0xffffffff;
  for (const b of [...head.subarray(4), ...body]) c = (crcTable[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((c ^ 0xffffffff) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}

/** A PNG of raw (unfiltered) rows, each row written with filter `filters[y % n]` (bpp: filter byte distance). */
function png(
  rows: Uint8Array[],
  o: { width: number; depth: number; colorType: number; filters: number[]; bpp?: number; interlace?: number },
): Buffer {
  const bpp = o.bpp ?? 1;
  const parts: number[] = [];
  rows.forEach((row, y) => {
    const f = o.filters[y % o.filters.length] as number;
    parts.push(f);
    const up = y > 0 ? (rows[y - 1] as Uint8Array) : new Uint8Array(row.length);
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? (row[i - bpp] as number) : 0;
      const b = up[i] as number;
      const c = i >= bpp ? (up[i - bpp] as number) : 0;
      const p = a + b - c;
      const pred = [
        0,
        a,
        b,
        (a + b) >> 1,
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c,
      ][f] as number;
      parts.push(((row[i] as number) - pred) & 0xff);
    }
  });
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(o.width, 0);
  ihdr.writeUInt32BE(rows.length, 4);
  ihdr[8] = o.depth;
  ihdr[9] = o.colorType;
  ihdr[12] = o.interlace ?? 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Uint8Array.from(parts))),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('decodeMaskPng', () => {
  it('reads the class ids of a make-shapes palette mask, not its colours', () => {
    const scene = generateScene(5, { width: 40, height: 30 });
    const bytes = encodeIndexedPng(scene.semantic, 40, 30, vocPalette());
    const m = decodeMaskPng(bytes);
    expect([m.width, m.height]).toEqual([40, 30]);
    expect(Array.from(m.data)).toEqual(Array.from(scene.semantic));
    expect(new Set(m.data).size).toBeGreaterThan(1);
  });

  it('undoes every PNG row filter (8-bit grey), 16-bit grey and packed 4-bit palettes', () => {
    const width = 7;
    const rows = Array.from({ length: 10 }, (_, y) =>
      Uint8Array.from({ length: width }, (_, x) => (x * 37 + y * 11) % 256),
    );
    const m8 = decodeMaskPng(png(rows, { width, depth: 8, colorType: 0, filters: [0, 1, 2, 3, 4] }));
    expect(Array.from(m8.data)).toEqual(rows.flatMap((r) => Array.from(r)));
    // 16 bit: two bytes per value, big-endian; filters work on bytes 2 apart
    const values = Array.from({ length: 10 * width }, (_, i) => (i * 997) % 65536);
    const rows16 = Array.from({ length: 10 }, (_, y) => {
      const r = new Uint8Array(2 * width);
      for (let x = 0; x < width; x++) {
        const v = values[y * width + x] as number;
        r[2 * x] = v >> 8;
        r[2 * x + 1] = v & 0xff;
      }
      return r;
    });
    const m16 = decodeMaskPng(
      png(rows16, { width, depth: 16, colorType: 0, filters: [4, 3, 2, 1, 0], bpp: 2 }),
    );
    expect(m16.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(m16.data)).toEqual(values);
    // 4 bit palette: two pixels per byte, high nibble first; the last byte of a row is half used
    const ids = Array.from({ length: 3 * width }, (_, i) => i % 13);
    const rows4 = Array.from({ length: 3 }, (_, y) => {
      const r = new Uint8Array(Math.ceil(width / 2));
      for (let x = 0; x < width; x++) r[x >> 1] |= (ids[y * width + x] as number) << (x % 2 ? 0 : 4);
      return r;
    });
    const m4 = decodeMaskPng(png(rows4, { width, depth: 4, colorType: 3, filters: [1, 2, 4] }));
    expect(Array.from(m4.data)).toEqual(ids);
  });

  it('rejects colour images, interlaced files and damaged data, naming the source', () => {
    const rgb = encodePng(new Uint8Array(4 * 4 * 3), 4, 4);
    expect(() => decodeMaskPng(rgb, "'a.png'")).toThrow(
      /decodeMaskPng: 'a.png' holds RGB pixels; a mask must be a palette or grayscale PNG whose values are class ids/,
    );
    const row = [new Uint8Array(4)];
    expect(() =>
      decodeMaskPng(png(row, { width: 4, depth: 8, colorType: 0, filters: [0], interlace: 1 }), 'm'),
    ).toThrow(/m is interlaced/);
    expect(() => decodeMaskPng(png(row, { width: 4, depth: 8, colorType: 0, filters: [7] }), 'm')).toThrow(
      /m: row 0 has an unknown filter type 7/,
    );
    expect(() => decodeMaskPng(new Uint8Array([1, 2, 3]), 'x')).toThrow(/x is not a PNG file/);
    const good = png(row, { width: 4, depth: 8, colorType: 0, filters: [0] });
    expect(() => decodeMaskPng(good.subarray(0, good.length - 20), 'cut')).toThrow(/cut is truncated/);
  });
});
