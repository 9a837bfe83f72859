/**
 * The Pascal VOC colour map (the palette of VOC's segmentation PNGs): index 0 black, 1 (128, 0, 0), 2 (0, 128,
 * 0), 3 (128, 128, 0), ...; 255 (224, 224, 192) is VOC's "ignore" colour. Semantic masks are written as
 * palette PNGs with index = category id, so any VOC-style loader reads the class ids directly.
 */
export function vocPalette(): Uint8Array {
  const pal = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    let c = i;
    let r = 0;
    let g = 0;
    let b = 0;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    pal[3 * i] = r;
    pal[3 * i + 1] = g;
    pal[3 * i + 2] = b;
  }
  return pal;
}
