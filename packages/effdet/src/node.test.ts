import { readFileSync } from 'node:fs';
import { describeWithFixture } from '@effdet/testing';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { labelFor } from './coco_labels.js';
import {
  decodeImage,
  decodeImageBuffer,
  drawDetections,
  encodePng,
  sniffImageFormat,
  textWidth,
} from './node.js';

const { PNG } = pngjs;

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG whose IHDR says width x height, with a correct CRC and no image data. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage / encodePng', () => {
  it('round-trips RGB through PNG', async () => {
    const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 53) % 256);
    const png = encodePng(rgb, 5, 3);
    expect(sniffImageFormat(png)).toBe('png');
    const back = await decodeImage(png);
    expect(back.width).toBe(5);
    expect(back.height).toBe(3);
    expect(Array.from(back.data)).toEqual(Array.from(rgb));
  });

  it('drops alpha of RGBA PNGs and expands grey PNGs', () => {
    const rgba = new PNG({ width: 2, height: 1 });
    rgba.data = Buffer.from([1, 2, 3, 0, 4, 5, 6, 128]);
    const a = decodeImageBuffer(PNG.sync.write(rgba));
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const g = new PNG({ width: 2, height: 1, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    g.data = Buffer.from([7, 200]);
    const gb = decodeImageBuffer(
      PNG.sync.write(g, { colorType: 0, inputColorType: 0, inputHasAlpha: false }),
    );
    expect(Array.from(gb.data)).toEqual([7, 7, 7, 200, 200, 200]);
  });

  it('rejects non-images, empty and broken files with clear messages', async () => {
    await expect(decodeImage(Buffer.from('hello world'))).rejects.toThrow(
      /decodeImageBuffer: buffer is not a JPEG or PNG image \(first bytes 68 65 6c 6c 6f 20 77 6f; expected ff d8 ff or 89 50 4e 47\)/,
    );
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(
      /decodeImageBuffer: buffer is empty \(0 bytes\)/,
    );
    await expect(decodeImage('/nonexistent/cat.jpg')).rejects.toThrow(
      /decodeImage: cannot read '\/nonexistent\/cat.jpg'/,
    );
    await expect(decodeImage(42 as never)).rejects.toThrow(
      /decodeImage: expected a file path or a Uint8Array/,
    );
    expect(() => decodeImageBuffer(pngHeaderOnly(0, 0))).toThrow(
      /decodeImageBuffer: buffer (is a PNG of zero size|could not be decoded as PNG)/,
    );
    expect(() => encodePng(new Uint8Array(5), 2, 1)).toThrow(
      /encodePng: rgb must be a Uint8Array of 2x1x3 = 6 bytes, got 5/,
    );
    expect(() => encodePng(new Uint8Array(0), 0, 1)).toThrow(
      /encodePng: width and height must be positive integers, got 0x1/,
    );
  });
});

describeWithFixture('images/img1.jpg', 'decodeImage (JPEG)', (path) => {
  // jpeg-js runs ~50x slower inside Jest than in plain Node (about 5 s vs 0.1 s for this image): decode it once.
  it('decodes img1.jpg (1024x636) from a path; small JPEG buffers; broken JPEGs fail clearly', async () => {
    const a = await decodeImage(path);
    expect([a.width, a.height]).toEqual([1024, 636]);
    expect(a.data.length).toBe(1024 * 636 * 3);
    const bytes = readFileSync(path);
    const small = jpeg.encode({ data: Buffer.alloc(8 * 4 * 4, 200), width: 8, height: 4 }, 90).data;
    const b = decodeImageBuffer(small);
    expect([b.width, b.height]).toEqual([8, 4]);
    expect(Array.from(b.data)).toEqual(
      Array.from(jpeg.decode(small, { useTArray: true, formatAsRGBA: false }).data),
    );
    expect(() => decodeImageBuffer(bytes.subarray(0, 200), 'img1 head')).toThrow(
      /decodeImageBuffer: img1 head could not be decoded as JPEG/,
    );
    // A JPEG whose frame header says 0x0.
    const zero = Buffer.from(bytes);
    for (let i = 2; i < zero.length - 9; i++) {
      if (zero[i] === 0xff && (zero[i + 1] === 0xc0 || zero[i + 1] === 0xc2)) {
        zero.fill(0, i + 5, i + 9); // height and width
        break;
      }
    }
    expect(() => decodeImageBuffer(zero)).toThrow(
      /decodeImageBuffer: buffer (is a JPEG of zero size|could not be decoded as JPEG)/,
    );
  });
});

describe('drawDetections', () => {
  const W = 100;
  const H = 100;
  const black = () => new Uint8Array(W * H * 3);
  const px = (img: Uint8Array, x: number, y: number) =>
    Array.from(img.subarray((y * W + x) * 3, (y * W + x) * 3 + 3));
  // One detection of class 1 and a padding row.
  const rows = [20, 40, 60, 80, 0.9, 1, 0, 0, 0, 0, 0, 0];

  it('draws the box outline and a tag above it on a copy', () => {
    const src = black();
    const out = drawDetections(src, W, H, rows);
    expect(src.every((v) => v === 0)).toBe(true);
    const green = [60, 180, 75]; // palette colour of class 1
    expect(px(out, 20, 40)).toEqual(green); // corner
    expect(px(out, 60, 80)).toEqual(green); // opposite corner
    expect(px(out, 40, 41)).toEqual(green); // top edge, 2 px wide
    expect(px(out, 40, 42)).toEqual([0, 0, 0]);
    expect(px(out, 40, 60)).toEqual([0, 0, 0]); // inside
    // Tag 11 px tall above the box (y 29..39), from x = 20; '1' of "1 90%" starts at x 22, its top ink at (24, 31).
    expect(px(out, 21, 30)).toEqual(green);
    expect(px(out, 24, 31)).toEqual([255, 255, 255]);
    expect(px(out, 20 + textWidth('1 90%') + 4, 30)).toEqual([0, 0, 0]);
  });

  it('names classes with labels, skips low scores, and takes Detection objects', () => {
    const named = drawDetections(black(), W, H, rows, labelFor);
    // "person 90%" is longer than "1 90%".
    expect(px(named, 20 + textWidth('1 90%') + 6, 30)).toEqual([60, 180, 75]);
    const none = drawDetections(black(), W, H, rows, undefined, { minScore: 0.95 });
    expect(none.every((v) => v === 0)).toBe(true);
    const objs = drawDetections(black(), W, H, [{ box: [20, 40, 60, 80], score: 0.9, classId: 1 }]);
    expect(objs).toEqual(drawDetections(black(), W, H, rows));
  });

  it('clips boxes and tags to the image', () => {
    const out = drawDetections(black(), W, H, [-50, -50, 150, 150, 0.5, 3]);
    expect(out.length).toBe(W * H * 3);
    expect(px(out, 99, 50)).toEqual([0, 0, 0]); // right edge is outside the image
  });

  it('checks its arguments', () => {
    expect(() => drawDetections(new Uint8Array(3), W, H, rows)).toThrow(
      /drawDetections: rgb must be a Uint8Array of 100x100x3 = 30000 bytes, got 3/,
    );
    expect(() => drawDetections(black(), W, H, [1, 2, 3])).toThrow(
      /drawDetections: detections must be Detection objects or flat rows of 6/,
    );
    expect(() => drawDetections(black(), W, H, rows, undefined, { lineWidth: 0 })).toThrow(
      /lineWidth must be a positive integer/,
    );
  });
});
