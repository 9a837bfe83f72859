import {
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithFixture, fixturePath } from '@effdet/testing';
import { crc32, crc32c, maskCrc, unmaskCrc } from './crc.js';
import { WeightsFormatError } from './errors.js';
import { openTfCheckpoint, readSafetensorsFile, resolveTfCheckpointPrefix } from './node.js';
import { toFloat32, toTypedArray } from './raw_tensor.js';
import { snappyDecompress } from './snappy.js';
import { bundleEntry, bundleHeader, writeTable } from './testing/builders.js';
import { sameBytes } from './testing/compare.js';
import {
  openTfCheckpointIndex,
  parseCheckpointState,
  parseTfIndex,
  tfEmaNames,
  tfShardPath,
} from './tf_checkpoint.js';

const ckptDir = (rel: string) => fixturePath(`tf_checkpoint/${rel}`);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'effdet-tf-'));
}

describe('crc32 / crc32c / masking', () => {
  it('match the standard check values', () => {
    const s = new TextEncoder().encode('123456789');
    expect(crc32(s)).toBe(0xcbf43926);
    expect(crc32c(s)).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    // Incremental updates equal one pass (and cover the slicing-by-8 tail handling).
    const big = Uint8Array.from({ length: 1001 }, (_, i) => (i * 31) & 0xff);
    expect(crc32c(big.subarray(500), crc32c(big.subarray(0, 500)))).toBe(crc32c(big));
    expect(crc32(big.subarray(3), crc32(big.subarray(0, 3)))).toBe(crc32(big));
    for (const c of [0, 1, 0xdeadbeef, 0xffffffff]) expect(unmaskCrc(maskCrc(c))).toBe(c);
  });
});

describe('snappyDecompress', () => {
  it('literals and overlapping copies (all three copy kinds)', () => {
    // "abcd" literal, copy-1 len 8 offset 4 -> "abcdabcdabcd", copy-2 len 3 offset 2, copy-4 len 2 offset 12.
    const src = Uint8Array.from([
      17,
      (4 - 1) << 2,
      97,
      98,
      99,
      100,
      0x01 | ((8 - 4) << 2),
      4,
      0x02 | ((3 - 1) << 2),
      2,
      0,
      0x03 | ((2 - 1) << 2),
      12,
      0,
      0,
      0,
    ]);
    expect(new TextDecoder().decode(snappyDecompress(src))).toBe('abcdabcdabcdcdcda');
  });

  it('long literals (60+ length codes) and corrupt input', () => {
    const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const src = Uint8Array.from([0xac, 0x02, 61 << 2, (300 - 1) & 0xff, (300 - 1) >> 8, ...payload]);
    expect(sameBytes(snappyDecompress(src), payload)).toBe(true);
    expect(() => snappyDecompress(Uint8Array.from([5, 0x01, 9]))).toThrow(
      /copy offset 9 outside the 0 bytes written/,
    );
    expect(() => snappyDecompress(Uint8Array.from([9, 0, 97]))).toThrow(
      /produced 1 bytes, the preamble declares 9/,
    );
    expect(() => snappyDecompress(Uint8Array.from([2, 8, 97]))).toThrow(
      /literal of 3 bytes runs past the input/,
    );
  });
});

describeWithFixture('tf_checkpoint/tf_written', 'TF-written checkpoint files', (dir) => {
  it('regression_v1: name-based keys, w = -0.85786223, b = 0', async () => {
    const ckpt = await openTfCheckpoint(join(dir, 'regression_v1.index'));
    try {
      expect(ckpt.entries.map((e) => e.name)).toEqual(['b', 'w']);
      expect(ckpt.header).toEqual({
        numShards: 1,
        endianness: 'little',
        version: { producer: 1, minConsumer: 0, badConsumers: [] },
      });
      const w = toFloat32(await ckpt.read('w'));
      expect(w[0]).toBeCloseTo(-0.85786223, 7);
      expect(Array.from(toFloat32(await ckpt.read('b')))).toEqual([0]);
    } finally {
      await ckpt.close();
    }
  });

  it('object-based keys, int64 scalars and the DT_STRING object graph', async () => {
    const ckpt = await openTfCheckpoint(join(dir, 'regression_objectbased'));
    try {
      const names = ckpt.entries.map((e) => e.name);
      expect(names).toEqual(
        expect.arrayContaining([
          '_CHECKPOINTABLE_OBJECT_GRAPH',
          'w/.ATTRIBUTES/VARIABLE_VALUE',
          'b/.ATTRIBUTES/VARIABLE_VALUE',
        ]),
      );
      expect(names.filter((n) => n.endsWith('/.ATTRIBUTES/VARIABLE_VALUE')).length).toBe(names.length - 1);
      expect(toFloat32(await ckpt.read('w/.ATTRIBUTES/VARIABLE_VALUE'))[0]).toBeCloseTo(0.20429754, 7);
      const all = await ckpt.readAll();
      const int64 = Object.entries(all).filter(([, t]) => t.dtype === 'int64');
      expect(int64.length).toBeGreaterThan(0);
      expect(int64[0][1].shape).toEqual([]);
      expect(typeof (toTypedArray(int64[0][1]) as BigInt64Array)[0]).toBe('bigint');
      const graph = all._CHECKPOINTABLE_OBJECT_GRAPH;
      expect(graph.dtype).toBe('string');
      expect(graph.shape).toEqual([]);
      expect(graph.strings?.[0].byteLength).toBe(531);
    } finally {
      await ckpt.close();
    }
    // A flipped byte in the string payload fails the entry crc.
    const data = readFileSync(join(dir, 'regression_objectbased.data-00000-of-00001'));
    const entry = parseTfIndex(readFileSync(join(dir, 'regression_objectbased.index'))).entries[0];
    const bad = Uint8Array.from(data);
    bad[entry.offset + 100] ^= 1;
    const ckpt2 = openTfCheckpointIndex(
      readFileSync(join(dir, 'regression_objectbased.index')),
      async (_s, o, n) => bad.subarray(o, o + n),
    );
    await expect(ckpt2.read('_CHECKPOINTABLE_OBJECT_GRAPH')).rejects.toThrow(
      /masked CRC-32C .* does not match/,
    );
    bad[entry.offset + 100] ^= 1;
    bad[entry.offset] ^= 1; // the varint length: its checksum no longer matches
    await expect(ckpt2.read('_CHECKPOINTABLE_OBJECT_GRAPH')).rejects.toThrow(
      /checksum of the string lengths does not match/,
    );
  });

  it('minigo.index: 333 entries from a Snappy-compressed block', () => {
    const idx = parseTfIndex(readFileSync(join(dir, 'minigo.index')));
    expect(idx.entries.length).toBe(333);
    expect(idx.snappyBlocks).toBe(1);
    const names = idx.entries.map((e) => e.name);
    expect(names).toContain('batch_normalization/beta');
    expect(names).toContain('batch_normalization/beta/Momentum');
    expect(names).toContain('global_step');
    expect(idx.entries.find((e) => e.name === 'global_step')?.dtype).toBe('int64');
  });

  it('style.index: 92 entries', () => {
    const idx = parseTfIndex(readFileSync(join(dir, 'style.index')));
    expect(idx.entries.length).toBe(92);
    expect(idx.entries.map((e) => e.name)).toEqual(
      expect.arrayContaining(['conv1.conv2d.bias', 'res5.in2.weight']),
    );
    expect(idx.entries.find((e) => e.name === 'conv1.conv2d.weight')?.shape).toEqual([32, 3, 9, 9]);
  });

  it('transformer.index: 148 entries, large multi-byte offsets consistent with the sizes', () => {
    const idx = parseTfIndex(readFileSync(join(dir, 'transformer.index')));
    expect(idx.entries.length).toBe(148);
    const wte = idx.entries.find((e) => e.name === 'model/wte');
    expect(wte?.shape).toEqual([50257, 768]);
    expect(wte?.size).toBe(50257 * 768 * 4);
    expect(idx.entries.map((e) => e.name)).toContain('model/h0/attn/c_attn/b');
    // The tensors tile the shard: sorted by offset, each starts where the previous ended.
    const byOffset = [...idx.entries].sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const e of byOffset) {
      expect(e.offset).toBe(end);
      end = e.offset + e.size;
    }
    expect(end).toBe(497759232);
    expect(Math.max(...idx.entries.map((e) => e.offset))).toBeGreaterThan(2 ** 28);
  });

  it('a missing data shard fails only when a tensor is read, naming the file', async () => {
    const tmp = tempDir();
    try {
      copyFileSync(join(dir, 'transformer.index'), join(tmp, 'model.index'));
      const ckpt = await openTfCheckpoint(join(tmp, 'model.index'));
      expect(ckpt.entries.length).toBe(148);
      await expect(ckpt.read('model/wte')).rejects.toThrow(
        /data shard .*model\.data-00000-of-00001 cannot be opened \(ENOENT\)/,
      );
      await ckpt.close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('corrupt index files: bad magic, flipped block bytes, truncation', () => {
    const good = readFileSync(join(dir, 'regression_v1.index'));
    const badMagic = Uint8Array.from(good);
    badMagic[badMagic.length - 1] ^= 0xff;
    expect(() => parseTfIndex(badMagic)).toThrow(
      /parseTfIndex: bad table magic 0x24475248b80fb57|bad table magic/,
    );
    const flipped = Uint8Array.from(good);
    flipped[10] ^= 0x01; // inside the data block
    expect(() => parseTfIndex(flipped)).toThrow(
      /data block 0: block at 0 has CRC-32C .* stored .* \(corrupt file\)/,
    );
    const crcByte = Uint8Array.from(good);
    crcByte[58] ^= 0x01; // the data block's stored crc (block size 57 + type byte)
    expect(() => parseTfIndex(crcByte)).toThrow(/CRC-32C/);
    expect(() => parseTfIndex(good.subarray(0, 100))).toThrow(WeightsFormatError);
    expect(() => parseTfIndex(good.subarray(0, 20))).toThrow(/shorter than the 48-byte table footer/);
    // The crc check can be turned off; then the flipped byte shows up as a decoding problem or wrong data, not a crash.
    expect(() => parseTfIndex(crcByte, { verifyCrc: false })).not.toThrow();
  });

  it('a flipped byte in the data shard fails that tensor crc; a truncated shard is reported', async () => {
    const tmp = tempDir();
    try {
      copyFileSync(join(dir, 'regression_v1.index'), join(tmp, 'm.index'));
      const data = readFileSync(join(dir, 'regression_v1.data-00000-of-00001'));
      data[5] ^= 0x10; // inside w
      writeFileSync(join(tmp, 'm.data-00000-of-00001'), data);
      const ckpt = await openTfCheckpoint(join(tmp, 'm'));
      await expect(ckpt.read('w')).rejects.toThrow(
        /tensor 'w': masked CRC-32C .* does not match .* \(corrupt data shard\)/,
      );
      expect(toFloat32(await ckpt.read('b'))[0]).toBe(0);
      await ckpt.close();
      writeFileSync(join(tmp, 'm.data-00000-of-00001'), data.subarray(0, 6));
      const short = await openTfCheckpoint(join(tmp, 'm'));
      await expect(short.read('w')).rejects.toThrow(
        /range \[4, 8\) exceeds .*m\.data-00000-of-00001 \(6 bytes; truncated\?\)/,
      );
      await short.close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('hand-made TF indexes', () => {
  const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
  const shardOf = (bytes: Uint8Array) => async (_s: number, o: number, n: number) => bytes.subarray(o, o + n);

  it('partitioned entries and unsupported dtypes give clear errors naming the tensor', async () => {
    const data = f32(1, 2);
    const index = writeTable([
      ['', bundleHeader(1)],
      ['part', bundleEntry({ dtype: 1, shape: [2], offset: 0, size: 8, slices: 2 })],
      ['cplx', bundleEntry({ dtype: 8, shape: [1], offset: 0, size: 8 })],
      ['ok', bundleEntry({ dtype: 1, shape: [2], offset: 0, size: 8, crc: maskCrc(crc32c(data)) })],
    ]);
    const ckpt = openTfCheckpointIndex(index, shardOf(data));
    expect(ckpt.index.map((e) => e.name)).toEqual(['cplx', 'ok', 'part']);
    expect(ckpt.entries.map((e) => e.name)).toEqual(['ok', 'part']);
    await expect(ckpt.read('part')).rejects.toThrow(
      /tensor 'part' is partitioned into 2 slices, which is not supported/,
    );
    await expect(ckpt.read('cplx')).rejects.toThrow(
      /tensor 'cplx' has dtype DT_COMPLEX64, which is not supported/,
    );
    expect(Array.from(toFloat32(await ckpt.read('ok')))).toEqual([1, 2]);
  });

  it('offsets above 2^32 and 2^52 decode exactly', () => {
    const index = writeTable([
      ['', bundleHeader(2)],
      ['a', bundleEntry({ dtype: 1, shape: [1], offset: 2 ** 32 + 12345, size: 4 })],
      ['b', bundleEntry({ dtype: 19, shape: [3, 0], shard: 1, offset: 2 ** 52 + 2, size: 0 })],
    ]);
    const idx = parseTfIndex(index);
    expect(idx.entries[0].offset).toBe(2 ** 32 + 12345);
    expect(idx.entries[1]).toMatchObject({
      offset: 2 ** 52 + 2,
      shardId: 1,
      dtype: 'float16',
      shape: [3, 0],
    });
  });

  it('reads a tensor stored beyond 4 GiB of a (sparse) shard file', async () => {
    const tmp = tempDir();
    try {
      const at = 2 ** 32 + 8;
      const data = f32(3.5, -1);
      const fd = openSync(join(tmp, 'big.data-00000-of-00001'), 'w');
      try {
        writeSync(fd, data, 0, data.length, at);
      } finally {
        closeSync(fd);
      }
      writeFileSync(
        join(tmp, 'big.index'),
        writeTable([
          ['', bundleHeader(1)],
          ['far', bundleEntry({ dtype: 1, shape: [2], offset: at, size: 8, crc: maskCrc(crc32c(data)) })],
        ]),
      );
      const ckpt = await openTfCheckpoint(join(tmp, 'big'));
      expect(Array.from(toFloat32(await ckpt.read('far')))).toEqual([3.5, -1]);
      await ckpt.close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('big-endian bundles are byte-swapped; a missing header and unsorted keys are errors', async () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -2, false);
    const index = writeTable([
      ['', bundleHeader(1, 1)],
      ['x', bundleEntry({ dtype: 1, shape: [2], offset: 0, size: 8, crc: maskCrc(crc32c(be)) })],
    ]);
    const ckpt = openTfCheckpointIndex(index, shardOf(be));
    expect(ckpt.header.endianness).toBe('big');
    expect(Array.from(toFloat32(await ckpt.read('x')))).toEqual([1.5, -2]);
    expect(() =>
      parseTfIndex(writeTable([['x', bundleEntry({ dtype: 1, shape: [], offset: 0, size: 4 })]])),
    ).toThrow(/no header entry/);
    expect(() =>
      parseTfIndex(
        writeTable([
          ['', bundleHeader(1)],
          ['x', bundleEntry({ dtype: 1, shape: [], shard: 3, offset: 0, size: 4 })],
        ]),
      ),
    ).toThrow(/tensor 'x' is in shard 3 but the header says 1 shards/);
  });

  it('a size that does not match dtype x shape is refused', async () => {
    const index = writeTable([
      ['', bundleHeader(1)],
      ['x', bundleEntry({ dtype: 1, shape: [3], offset: 0, size: 8 })],
    ]);
    const ckpt = openTfCheckpointIndex(index, shardOf(f32(1, 2)));
    await expect(ckpt.read('x')).rejects.toThrow(/DT_FLOAT \[3\] needs 12 bytes, the index says 8/);
  });
});

describe('checkpoint helpers', () => {
  it('parseCheckpointState, tfShardPath, tfEmaNames', () => {
    expect(
      parseCheckpointState('model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n'),
    ).toBe('model');
    expect(parseCheckpointState('model_checkpoint_path: "/a/b\\"c"')).toBe('/a/b"c');
    expect(() => parseCheckpointState('all_model_checkpoint_paths: "x"')).toThrow(/no model_checkpoint_path/);
    expect(tfShardPath('ckpt/model', 2, 10)).toBe('ckpt/model.data-00002-of-00010');
    const names = ['a', 'a/ExponentialMovingAverage', 'b', 'c/ExponentialMovingAverage', 'global_step'];
    expect([...tfEmaNames(names, true)]).toEqual([
      ['a', 'a/ExponentialMovingAverage'],
      ['b', 'b'],
      ['c', 'c/ExponentialMovingAverage'],
      ['global_step', 'global_step'],
    ]);
    expect([...tfEmaNames(names, false).keys()]).toEqual(['a', 'b', 'global_step']);
  });
});

describeWithFixture('tf_checkpoint/efficientdet-d0', 'EfficientDet-D0 TF checkpoint', (dir) => {
  it('1423 entries + header, every EMA tensor passes its crc and equals the PyTorch weights in TF layout', async () => {
    expect(await resolveTfCheckpointPrefix(dir)).toBe(join(dir, 'model'));
    const ckpt = await openTfCheckpoint(dir);
    try {
      expect(ckpt.index.length).toBe(1423);
      expect(ckpt.header.numShards).toBe(1);
      const ema = ckpt.entries.filter((e) => e.name.endsWith('/ExponentialMovingAverage'));
      expect(ema.length).toBe(709);
      const read = await ckpt.readAll(ema.map((e) => e.name));
      expect(Object.keys(read).length).toBe(709);
      expect(ckpt.entry('global_step')?.dtype).toBe('int64');
      expect(ckpt.entries.some((e) => e.name.endsWith('/Momentum'))).toBe(true);

      const pt = (
        await readSafetensorsFile(fixturePath('effdet/tf_efficientdet_d0_s1.weights.safetensors') as string)
      ).tensors;
      const kernel = read['efficientnet-b0/stem/conv2d/kernel/ExponentialMovingAverage'];
      expect(kernel.shape).toEqual([3, 3, 3, 32]);
      const w = toFloat32(pt['backbone.conv_stem.weight']); // [32, 3, 3, 3] = [o, i, h, w]
      const k = toFloat32(kernel); // [h, w, i, o]
      const transposed = new Float32Array(k.length);
      for (let o = 0; o < 32; o++)
        for (let i = 0; i < 3; i++)
          for (let h = 0; h < 3; h++)
            for (let x = 0; x < 3; x++)
              transposed[((h * 3 + x) * 3 + i) * 32 + o] = w[((o * 3 + i) * 3 + h) * 3 + x];
      expect(sameBytes(k, transposed)).toBe(true);
      const gamma = read['efficientnet-b0/stem/tpu_batch_normalization/gamma/ExponentialMovingAverage'];
      expect(sameBytes(toFloat32(gamma), toFloat32(pt['backbone.bn1.weight']))).toBe(true);
      // The raw copies are perturbed: a loader that ignores EMA would not match.
      const raw = toFloat32(await ckpt.read('efficientnet-b0/stem/tpu_batch_normalization/gamma'));
      expect(sameBytes(raw, toFloat32(gamma))).toBe(false);
    } finally {
      await ckpt.close();
    }
  });

  it('the 17-block index gives the same entries and values', async () => {
    const small = ckptDir('efficientdet-d0-smallblocks') as string;
    const tmp = tempDir();
    try {
      copyFileSync(join(small, 'model.index'), join(tmp, 'model.index'));
      copyFileSync(join(small, 'checkpoint'), join(tmp, 'checkpoint'));
      symlinkSync(join(dir, 'model.data-00000-of-00001'), join(tmp, 'model.data-00000-of-00001'));
      const a = await openTfCheckpoint(dir);
      const b = await openTfCheckpoint(tmp);
      try {
        expect(parseTfIndex(readFileSync(join(tmp, 'model.index'))).dataBlocks).toBe(17);
        expect(parseTfIndex(readFileSync(join(dir, 'model.index'))).dataBlocks).toBe(1);
        expect(b.index).toEqual(a.index);
        const ta = await a.readAll();
        const tb = await b.readAll();
        expect(Object.keys(tb)).toEqual(Object.keys(ta));
        for (const name of Object.keys(ta)) expect(sameBytes(tb[name].data, ta[name].data)).toBe(true);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
