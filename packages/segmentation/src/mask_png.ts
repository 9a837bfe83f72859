/**
 * Reads class-id masks stored as PNG (Node only: `node:zlib`). A mask is a palette PNG whose palette index is
 * the class id (what `effdet make-shapes --masks`, Pascal VOC and most labelling tools write) or a grayscale PNG
 * whose grey value is the class id (8 or 16 bit). Pixel values are returned as they are stored, never mapped
 * through the palette, so colours do not matter.
 */
import { inflateSync } from 'node:zlib';

/** A decoded mask: `height * width` class ids, row-major. */
export interface ClassMask {
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = p > a ? p - a : a - p;
  const pb = p > b ? p - b : b - p;
  const pc = p > c ? p - c : c - p;
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** Reverses the per-row PNG filters into a fresh buffer; `bpp` is the filter's byte distance. */
function unfilterRows(
  raw: Uint8Array,
  rowBytes: number,
  height: number,
  bpp: number,
  what: string,
): Uint8Array {
  const out = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    const type = raw[y * (rowBytes + 1)];
    const src = y * (rowBytes + 1) + 1;
    const dst = y * rowBytes;
    const up = dst - rowBytes;
    for (let i = 0; i < rowBytes; i++) {
      const left = i >= bpp ? out[dst + i - bpp] : 0;
      const above = y > 0 ? out[up + i] : 0;
      const diag = y > 0 && i >= bpp ? out[up + i - bpp] : 0;
      const v = raw[src + i];
      let r: number;
      switch (type) {
        case 0:
          r = v;
          break;
        case 1:
          r = v + left;
          break;
        case 2:
          r = v + above;
          break;
        case 3:
          r = v + ((left + above) >> 1);
          break;
        case 4:
          r = v + paeth(left, above, diag);
          break;
        default:
          throw new Error(`decodeMaskPng: ${what}: row ${y} has an unknown filter type ${type}`);
      }
      out[dst + i] = r & 0xff;
    }
  }
  return out;
}

/**
 * Decodes a palette or grayscale PNG to its stored values (class ids). `what` names the source in errors (a
 * file name). Throws for RGB / RGBA PNGs, interlaced files and damaged data.
 */
export function decodeMaskPng(bytes: Uint8Array, what = 'buffer'): ClassMask {
  const fn = 'decodeMaskPng';
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${fn}: ${what} is not a PNG file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let interlace = 0;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const body = pos + 8;
    if (body + len + 4 > bytes.length) throw new Error(`${fn}: ${what} is truncated (chunk ${type})`);
    if (type === 'IHDR') {
      width = view.getUint32(body);
      height = view.getUint32(body + 4);
      depth = bytes[body + 8];
      colorType = bytes[body + 9];
      interlace = bytes[body + 12];
    } else if (type === 'IDAT') {
      idat.push(bytes.subarray(body, body + len));
    } else if (type === 'IEND') {
      break;
    }
    pos = body + len + 4;
  }
  if (!(width > 0 && height > 0)) throw new Error(`${fn}: ${what} has no valid IHDR chunk`);
  if (colorType !== 0 && colorType !== 3) {
    const kind =
      { 2: 'RGB', 4: 'grey + alpha', 6: 'RGBA' }[colorType as 2 | 4 | 6] ?? `colour type ${colorType}`;
    throw new Error(
      `${fn}: ${what} holds ${kind} pixels; a mask must be a palette or grayscale PNG whose values are class ids`,
    );
  }
  if (![1, 2, 4, 8, 16].includes(depth) || (colorType === 3 && depth === 16)) {
    throw new Error(`${fn}: ${what} has an invalid bit depth ${depth}`);
  }
  if (interlace !== 0)
    throw new Error(`${fn}: ${what} is interlaced (Adam7); save the mask without interlacing`);
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new Error(`${fn}: ${what}: the image data does not inflate (${(e as Error).message})`);
  }
  const rowBytes = Math.ceil((width * depth) / 8);
  if (raw.length < (rowBytes + 1) * height) {
    throw new Error(
      `${fn}: ${what}: the image data is short (${raw.length} of ${(rowBytes + 1) * height} bytes)`,
    );
  }
  const rows = unfilterRows(raw, rowBytes, height, depth === 16 ? 2 : 1, what);
  if (depth === 8) return { width, height, data: rows };
  if (depth === 16) {
    const data = new Uint16Array(width * height);
    for (let i = 0; i < data.length; i++) data[i] = (rows[2 * i] << 8) | rows[2 * i + 1];
    return { width, height, data };
  }
  const data = new Uint8Array(width * height);
  const perByte = 8 / depth;
  const maxV = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = rows[y * rowBytes + Math.floor(x / perByte)];
      const shift = 8 - depth * ((x % perByte) + 1);
      data[y * width + x] = (byte >> shift) & maxV;
    }
  }
  return { width, height, data };
}
