import { describeWithBackends, expectNoLeaks } from '@effdet/testing';
import * as tf from '@tensorflow/tfjs-core';
import { imageSizeOf, imageToRgb, imageToTensor } from './image.js';

describeWithBackends('image inputs', () => {
  it('RGBA pixel data (ImageData-like) drops alpha; grey data is replicated', () => {
    const rgba = { data: new Uint8ClampedArray([1, 2, 3, 4, 5, 6, 7, 8]), width: 2, height: 1 };
    const t = imageToTensor(rgba);
    expect(t.shape).toEqual([1, 2, 3]);
    expect(t.dtype).toBe('int32');
    expect(Array.from(t.dataSync())).toEqual([1, 2, 3, 5, 6, 7]);
    const g = imageToTensor({ data: [9, 10], width: 1, height: 2 });
    expect(Array.from(g.dataSync())).toEqual([9, 9, 9, 10, 10, 10]);
    tf.dispose([t, g]);
  });

  it('tensors: 1 and 4 channels become 3; the result is a new tensor and keeps the dtype', () => {
    const rgb = tf.tensor3d([[[1.5, 2, 3]]]);
    const out = imageToTensor(rgb);
    expect(out).not.toBe(rgb);
    expect(out.dtype).toBe('float32');
    out.dispose();
    expect(rgb.isDisposed).toBe(false);
    const rgba = tf.tensor3d([[[1, 2, 3, 4]]], [1, 1, 4], 'int32');
    const a = imageToTensor(rgba);
    expect(Array.from(a.dataSync())).toEqual([1, 2, 3]);
    const grey = tf.tensor3d([[[7]]], [1, 1, 1], 'int32');
    const b = imageToTensor(grey);
    expect(Array.from(b.dataSync())).toEqual([7, 7, 7]);
    tf.dispose([rgb, rgba, a, grey, b]);
  });

  it('imageToRgb rounds floats half to even and clamps to 0..255', () => {
    const t = tf.tensor3d([[[-3, 0.5, 1.5]], [[254.5, 255.7, 100.2]]], [2, 1, 3]);
    const r = imageToRgb(t);
    expect(r.width).toBe(1);
    expect(r.height).toBe(2);
    expect(Array.from(r.data)).toEqual([0, 0, 2, 254, 255, 100]);
    // RGB Uint8Array pixel data is used as is.
    const data = new Uint8Array([1, 2, 3]);
    expect(imageToRgb({ data, width: 1, height: 1 }).data).toBe(data);
    t.dispose();
  });

  it('imageSizeOf reads sizes without pixels, including duck-typed browser elements', () => {
    const t = tf.zeros([3, 5, 3]);
    expect(imageSizeOf(t as tf.Tensor3D)).toEqual([3, 5]);
    expect(imageSizeOf({ data: new Uint8Array(24), width: 4, height: 2 })).toEqual([2, 4]);
    expect(imageSizeOf({ width: 640, height: 480 })).toEqual([480, 640]);
    expect(imageSizeOf({ videoWidth: 320, videoHeight: 200, width: 0, height: 0 } as never)).toEqual([
      200, 320,
    ]);
    t.dispose();
  });

  it('passes canvas-like browser elements to tf.browser.fromPixels', () => {
    // A stand-in for an HTMLCanvasElement: fromPixels reads getContext('2d').getImageData(...).
    const rgba = new Uint8ClampedArray([10, 20, 30, 255, 40, 50, 60, 255]);
    const fakeCanvas = { width: 2, height: 1, getContext: () => ({ getImageData: () => ({ data: rgba }) }) };
    const t = imageToTensor(fakeCanvas);
    expect(t.shape).toEqual([1, 2, 3]);
    expect(Array.from(t.dataSync())).toEqual([10, 20, 30, 40, 50, 60]);
    expect(imageToRgb(fakeCanvas).data).toEqual(new Uint8Array([10, 20, 30, 40, 50, 60]));
    t.dispose();
  });

  it('rejects wrong channel counts, zero sizes and non-images, naming the function', async () => {
    const two = tf.zeros([2, 2, 2]);
    const flat = tf.zeros([4]);
    await expectNoLeaks(() => {
      expect(() => imageToTensor(two as tf.Tensor3D)).toThrow(
        /imageToTensor: an image tensor must have 1, 3 or 4 channels, got 2 \(shape \[2,2,2\]\)/,
      );
      expect(() => imageToTensor(flat as never)).toThrow(
        /imageToTensor: an image tensor must be 3-D \[height, width, channels\], got \[4\]/,
      );
      expect(() => imageToRgb({ data: new Uint8Array(10), width: 2, height: 1 })).toThrow(
        /imageToRgb: pixel data must have 1, 3 or 4 channels; 10 values for 2x1 pixels gives 5/,
      );
      expect(() => imageToTensor({ data: new Uint8Array(0), width: 0, height: 5 })).toThrow(
        /imageToTensor: image must have a positive integer width and height, got 0x5/,
      );
      expect(() => imageToTensor({ data: new Uint8Array(5), width: 2, height: 1, channels: 3 })).toThrow(
        /pixel data needs 6 values \(2x1x3\), got 5/,
      );
      expect(() => imageToTensor(null as never)).toThrow(/imageToTensor: image must be .* got null/);
      expect(() => imageToTensor({ foo: 1 } as never)).toThrow(/got an object with keys \[foo\]/);
      expect(() => imageSizeOf(42 as never)).toThrow(/imageSizeOf: image must be .* got number 42/);
    });
    tf.dispose([two, flat]);
  });
});
