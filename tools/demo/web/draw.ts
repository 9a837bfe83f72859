/** Drawing on the view canvas: the image scaled to fit, boxes with labels and scores, mask overlays. */
import type { Detection, PixelData } from '@effdet/effdet';
import { overlayMask } from '@effdet/segmentation';

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45'];

export function colourOf(classId: number): string {
  return COLOURS[(classId - 1 + COLOURS.length) % COLOURS.length];
}

/** RGBA pixels of an RGB image (for putImageData). */
function rgba(rgb: ArrayLike<number>, width: number, height: number): ImageData {
  const out = new ImageData(width, height);
  for (let i = 0, j = 0; i < width * height; i++, j += 3) {
    out.data[4 * i] = rgb[j];
    out.data[4 * i + 1] = rgb[j + 1];
    out.data[4 * i + 2] = rgb[j + 2];
    out.data[4 * i + 3] = 255;
  }
  return out;
}

/** RGB bytes of interleaved pixel data (3 or 4 channels). */
export function toRgb(image: PixelData): Uint8Array {
  const n = image.width * image.height;
  const ch = image.channels ?? image.data.length / n;
  if (ch === 3) return Uint8Array.from(image.data);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = image.data[ch * i];
    out[3 * i + 1] = image.data[ch * i + 1];
    out[3 * i + 2] = image.data[ch * i + 2];
  }
  return out;
}

/** Scale that fits an image into the canvas' maximum size (small images enlarged, large shrunk). */
function fit(canvas: HTMLCanvasElement, width: number, height: number, max = 512): number {
  const s = Math.min(max / width, max / height);
  canvas.width = Math.round(width * s);
  canvas.height = Math.round(height * s);
  return s;
}

function paint(canvas: HTMLCanvasElement, rgb: ArrayLike<number>, width: number, height: number): number {
  const s = fit(canvas, width, height);
  const tmp = document.createElement('canvas');
  tmp.width = width;
  tmp.height = height;
  tmp.getContext('2d')!.putImageData(rgba(rgb, width, height), 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = s < 1;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  return s;
}

/** Draws the image and its boxes; returns how many boxes were drawn. */
export function drawDetections(canvas: HTMLCanvasElement, image: PixelData, detections: Detection[]): number {
  const s = paint(canvas, toRgb(image), image.width, image.height);
  const ctx = canvas.getContext('2d')!;
  ctx.lineWidth = 2;
  ctx.font = '13px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box.map((v) => v * s);
    const colour = colourOf(d.classId);
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${d.label ?? `class ${d.classId}`} ${d.score.toFixed(2)}`;
    const w = ctx.measureText(text).width + 6;
    const ty = y1 >= 16 ? y1 - 16 : y1;
    ctx.fillStyle = colour;
    ctx.fillRect(x1, ty, w, 16);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + 3, ty + 1);
  }
  return detections.length;
}

/** Draws the image with the predicted classes blended in. */
export function drawMask(canvas: HTMLCanvasElement, image: PixelData, mask: Int32Array): void {
  const rgb = toRgb(image);
  paint(canvas, overlayMask(rgb, mask, image.width, image.height), image.width, image.height);
}
