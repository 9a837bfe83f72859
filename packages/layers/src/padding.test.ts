import { convOutputSize, resolvePadding, symmetricPadding } from '@effdet/layers';

describe('resolvePadding', () => {
  it.each([
    // [padding, k, s, d, expected]
    ['same', 3, 2, 1, 'same'],
    ['valid', 3, 1, 1, 'valid'],
    ['', 3, 1, 1, 'same'], // stride 1, odd kernel: symmetric == SAME, native path
    ['', 5, 1, 2, 'same'],
    ['', 1, 1, 1, 'valid'],
    [
      '',
      3,
      2,
      1,
      [
        [1, 1],
        [1, 1],
      ],
    ],
    [
      '',
      5,
      2,
      1,
      [
        [2, 2],
        [2, 2],
      ],
    ],
    [
      2,
      3,
      1,
      1,
      [
        [2, 2],
        [2, 2],
      ],
    ],
    [1, 3, 1, 1, 'same'],
    [0, 3, 1, 1, 'valid'],
  ] as const)('padding=%j k=%d s=%d d=%d -> %j', (p, k, s, d, want) => {
    expect(resolvePadding(p as never, k, s, d)).toEqual(want);
  });

  it('PyTorch symmetric padding formula', () => {
    expect(symmetricPadding(3, 2, 1)).toBe(1);
    expect(symmetricPadding(5, 2, 1)).toBe(2);
    expect(symmetricPadding(3, 1, 2)).toBe(2);
  });

  it('rejects nonsense', () => {
    expect(() => resolvePadding('full' as never, 3)).toThrow(
      /padding must be 'same', '', 'valid', a number or \[ph, pw\]; got "full"/,
    );
    expect(() => resolvePadding(-1, 3)).toThrow(/non-negative integers, got -1/);
  });

  it('output sizes: SAME is ceil(in / stride), explicit pads follow the floor formula', () => {
    expect(convOutputSize(7, 3, 2, 1, 'same')).toBe(4);
    expect(convOutputSize(7, 3, 2, 1, [1, 1])).toBe(4);
    expect(convOutputSize(8, 5, 2, 1, [2, 2])).toBe(4);
    expect(convOutputSize(8, 3, 1, 1, 'valid')).toBe(6);
  });
});
