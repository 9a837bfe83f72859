/**
 * Hostile pickles: payloads that, unpickled by Python, would run a command creating a marker file. Our
 * pickle VM must refuse every one of them with a WeightsFormatError that names the global, whatever opcode
 * reaches it (GLOBAL, STACK_GLOBAL, INST, OBJ, NEWOBJ, NEWOBJ_EX, BUILD) and wherever it sits (zip .pth,
 * legacy .pth main pickle or header pickles, nested inside a state dict or a tensor's rebuild arguments).
 * Proof that nothing ran: the marker file never appears, and no global object or prototype changed. The
 * test itself patches nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatBytes, memorySource } from './bytes.js';
import { WeightsFormatError } from './errors.js';
import { readTfjsFile } from './node.js';
import { PyOpaque, unpickle } from './pickle.js';
import { openPth, readPth } from './pth.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import {
  PickleBuilder,
  type PickledTensor,
  stateDictPickle,
  writeLegacyPth,
  writeZipPth,
} from './testing/builders.js';
import {
  CALL_FORMS,
  type CallForm,
  dangerousArgs,
  importChain,
  legacyHeader,
  pushCall,
} from './testing/payloads.js';
import { readTfjsArtifacts } from './tfjs_format.js';

/** The dangerous callables of the classic pickle exploits. */
const DANGEROUS: [string, string][] = [
  ['os', 'system'],
  ['posix', 'system'],
  ['nt', 'system'],
  ['builtins', 'eval'],
  ['builtins', 'exec'],
  ['__builtin__', 'eval'],
  ['builtins', '__import__'],
  ['subprocess', 'Popen'],
  ['subprocess', 'check_output'],
  ['builtins', 'getattr'],
  ['runpy', '_run_code'],
];

/** Harmless-looking but not allow-listed callables a REDUCE may target (what real checkpoints carry). */
const NOT_ALLOWED: [string, string][] = [
  ['argparse', 'Namespace'],
  ['numpy.core.multiarray', '_reconstruct'],
  ['torch.nn.modules.conv', 'Conv2d'],
  ['torch', 'load'],
  ['torch._utils', '_rebuild_from_type_v2'],
  ['__main__', 'Evil'],
  ['collections', 'defaultdict'],
  ['copyreg', '_reconstructor'],
];

const W: PickledTensor = {
  name: 'w',
  storage: 'FloatStorage',
  key: '0',
  numel: 2,
  offset: 0,
  shape: [2],
  stride: [1],
};
const STORAGE = new Uint8Array(Float32Array.from([1.5, -2]).buffer);

/** Read through a variable: the point is an own key named like the accessor. */
const PROTO = ['__', 'proto', '__'].join('');

let dir = '';
let marker = '';

/** Property names of the globals and prototypes a sandbox escape would most likely touch. */
function globalSnapshot(): string {
  const objs: [string, object][] = [
    ['globalThis', globalThis],
    ['Object.prototype', Object.prototype],
    ['Array.prototype', Array.prototype],
    ['Map.prototype', Map.prototype],
    ['Function.prototype', Function.prototype],
    ['Uint8Array.prototype', Uint8Array.prototype],
  ];
  return objs.map(([n, o]) => `${n}: ${Reflect.ownKeys(o).map(String).sort().join(',')}`).join('\n');
}

let before = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'effdet-security-'));
  marker = join(dir, 'pwned');
  before = globalSnapshot();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  expect(existsSync(marker)).toBe(false);
});

function protoFor(form: CallForm): number {
  return form === 'protocol0 text'
    ? 0
    : form.includes('STACK_GLOBAL') || form === 'OBJ' || form === 'NEWOBJ_EX'
      ? 4
      : 2;
}

/** `{'w': tensor, 'evil': <payload>}` as torch.save would pickle a state dict (payload after the tensor). */
function stateDictWith(form: CallForm, module: string, name: string, legacy: boolean): Uint8Array {
  const body = stateDictPickle([W], {
    legacy,
    extras: (p) => {
      p.str('evil');
      pushCall(p, form, module, name, dangerousArgs(module, name, marker, form === 'protocol0 text'));
    },
  });
  // Swap the builder's PROTO 2 header for the form's protocol (protocol 0 has no PROTO opcode).
  const proto = protoFor(form);
  return proto === 0 ? body.subarray(2) : concatBytes([Uint8Array.of(0x80, proto), body.subarray(2)]);
}

/** The payload as the whole pickle. */
function bare(form: CallForm, module: string, name: string): Uint8Array {
  const p = new PickleBuilder();
  if (protoFor(form) > 0) p.proto(protoFor(form));
  pushCall(p, form, module, name, dangerousArgs(module, name, marker, form === 'protocol0 text'));
  return p.stop().bytes();
}

function refusal(module: string, name: string): RegExp {
  const q = `${module}.${name}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`refusing pickle global '${q}'`);
}

async function expectRefused(bytes: Uint8Array, module: string, name: string, what: string): Promise<void> {
  let err: unknown = null;
  try {
    await readPth(bytes);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof WeightsFormatError)) {
    throw new Error(`${what}: expected a WeightsFormatError, got ${err === null ? 'a result' : String(err)}`);
  }
  expect(err.message).toMatch(refusal(module, name));
}

describe.each(DANGEROUS)('pickle global %s.%s', (module, name) => {
  it.each([...CALL_FORMS])(
    'is refused through %s in zip and legacy .pth files, naming the global',
    async (form) => {
      for (const legacy of [false, true]) {
        const sd = stateDictWith(form, module, name, legacy);
        const file = legacy ? writeLegacyPth(sd, [['0', 4, STORAGE]]) : writeZipPth(sd, { '0': STORAGE });
        await expectRefused(file, module, name, `${form} in a ${legacy ? 'legacy' : 'zip'} state dict`);
        const top = bare(form, module, name);
        await expectRefused(
          legacy ? writeLegacyPth(top, []) : writeZipPth(top, {}),
          module,
          name,
          `${form}, whole pickle`,
        );
        // Nested: under 'state_dict' of a training checkpoint.
        const nested = stateDictPickle([W], {
          legacy,
          wrap: ['state_dict'],
          extras: (p) => {
            p.str('hyper');
            p.emptyDict().str('deep');
            pushCall(p, form, module, name, dangerousArgs(module, name, marker, form === 'protocol0 text'));
            p.setitem();
          },
        });
        const nestedFile = legacy
          ? writeLegacyPth(nested, [['0', 4, STORAGE]])
          : writeZipPth(nested, { '0': STORAGE });
        await expectRefused(nestedFile, module, name, `${form} nested in a checkpoint`);
      }
    },
  );

  it('is refused in the header pickles of a legacy file (no globals are allowed there)', async () => {
    const sys = new PickleBuilder().proto(2);
    pushCall(sys, 'GLOBAL+REDUCE', module, name, dangerousArgs(module, name, marker));
    const file = concatBytes([legacyHeader(sys.stop().bytes()), stateDictPickle([W], { legacy: true })]);
    await expect(readPth(file)).rejects.toThrow(WeightsFormatError);
    await expect(readPth(file)).rejects.toThrow(`unexpected global '${module}.${name}' in the file header`);
  });

  it('is refused inside a tensor rebuild call and inside a persistent id', async () => {
    // _rebuild_tensor_v2(storage, 0, (2,), (1,), False, <payload as backward_hooks>)
    const hooks = new PickleBuilder().proto(2).emptyDict().mark().str('w');
    hooks.global('torch._utils', '_rebuild_tensor_v2').mark();
    hooks
      .mark()
      .str('storage')
      .global('torch', 'FloatStorage')
      .str('0')
      .str('cpu')
      .int(2)
      .tuple()
      .binpersid();
    hooks.int(0).mark().int(2).tuple().mark().int(1).tuple().bool(false);
    pushCall(hooks, 'GLOBAL+REDUCE', module, name, dangerousArgs(module, name, marker));
    hooks.tuple().reduce().setitems().stop();
    await expectRefused(writeZipPth(hooks.bytes(), { '0': STORAGE }), module, name, 'backward_hooks');
    // ('storage', <payload>, '0', 'cpu', 2): the storage type slot of a persistent id.
    const pid = new PickleBuilder().proto(2).emptyDict().mark().str('w').mark().str('storage');
    pushCall(pid, 'GLOBAL+REDUCE', module, name, dangerousArgs(module, name, marker));
    pid.str('0').str('cpu').int(2).tuple().binpersid().setitems().stop();
    await expectRefused(writeZipPth(pid.bytes(), { '0': STORAGE }), module, name, 'persistent id');
  });

  it('with skipUnknownGlobals becomes an inert placeholder that is dropped (still nothing runs)', async () => {
    for (const form of CALL_FORMS) {
      for (const legacy of [false, true]) {
        const sd = stateDictWith(form, module, name, legacy);
        const file = legacy ? writeLegacyPth(sd, [['0', 4, STORAGE]]) : writeZipPth(sd, { '0': STORAGE });
        const out = await readPth(file, { skipUnknownGlobals: true });
        expect(Object.keys(out)).toEqual(['w']);
        // The whole pickle being the payload is refused as "not a state dict".
        const top = bare(form, module, name);
        await expect(readPth(writeZipPth(top, {}), { skipUnknownGlobals: true })).rejects.toThrow(
          /not a state dict|expected a dict of tensors/,
        );
      }
    }
  });
});

describe('REDUCE on a callable outside the allow-list', () => {
  it.each(NOT_ALLOWED)('%s.%s is refused by name in every call form', async (module, name) => {
    for (const form of CALL_FORMS) {
      for (const legacy of [false, true]) {
        const sd = stateDictWith(form, module, name, legacy);
        const file = legacy ? writeLegacyPth(sd, [['0', 4, STORAGE]]) : writeZipPth(sd, { '0': STORAGE });
        await expectRefused(file, module, name, `${form}`);
      }
    }
  });

  it('REDUCE / NEWOBJ / OBJ on values that are not callables are refused', async () => {
    const cases: [string, Uint8Array][] = [
      // An allow-listed storage type is a class token, not a callable.
      [
        'storage type',
        new PickleBuilder()
          .proto(2)
          .global('torch', 'FloatStorage')
          .mark()
          .str('x')
          .tuple()
          .reduce()
          .stop()
          .bytes(),
      ],
      [
        'string',
        new PickleBuilder().proto(2).str('os.system').mark().str('x').tuple().reduce().stop().bytes(),
      ],
      ['dict', new PickleBuilder().proto(2).emptyDict().emptyTuple().raw(0x81).stop().bytes()],
      ['int', new PickleBuilder().proto(2).mark().int(3).str('x').raw(0x6f).stop().bytes()],
    ];
    for (const [what, pkl] of cases) {
      await expect(readPth(writeZipPth(pkl, {}))).rejects.toThrow(WeightsFormatError);
      await expect(readPth(writeZipPth(pkl, {}))).rejects.toThrow(/not callable/);
      expect(what).toBeTruthy();
    }
  });

  it('extension-registry opcodes and module pickles (nn.Module source) are refused', async () => {
    for (const ext of [0x82, 0x83, 0x84]) {
      await expect(readPth(writeZipPth(Uint8Array.of(0x80, 2, ext, 1, 0, 0, 0, 0x2e), {}))).rejects.toThrow(
        /extension-registry opcodes/,
      );
    }
    const modulePid = new PickleBuilder()
      .proto(2)
      .mark()
      .str('module')
      .str('evil.py')
      .str('import os')
      .tuple()
      .binpersid()
      .stop();
    await expect(readPth(writeLegacyPth(modulePid.bytes(), []))).rejects.toThrow(
      /pickles module source code/,
    );
  });

  it('the raw VM consults the resolver before calling anything', () => {
    const seen: string[] = [];
    const calls: string[] = [];
    const findGlobal = (m: string, n: string) => {
      seen.push(`${m}.${n}`);
      if (m === 'builtins' && n === '__import__') {
        throw new WeightsFormatError(`refusing ${m}.${n}`);
      }
      return new PyOpaque(`${m}.${n}`);
    };
    const p = new PickleBuilder().proto(2);
    importChain(p, marker).stop();
    expect(() => unpickle(p.bytes(), { findGlobal, persistentLoad: () => calls.push('pid') })).toThrow(
      'refusing builtins.__import__',
    );
    expect(seen).toEqual(['builtins.__import__']);
    expect(calls).toEqual([]);
    // With every global inert, the chain only records arguments: nothing is ever called.
    const inert = unpickle(p.bytes(), { findGlobal: (m, n) => new PyOpaque(`${m}.${n}`) }).value as PyOpaque;
    expect(inert).toBeInstanceOf(PyOpaque);
    expect(inert.args).toEqual([`touch '${marker}'`]);
  });

  it('the getattr(__import__("os"), "system") chain is refused at __import__ in .pth files', async () => {
    const p = new PickleBuilder().proto(2).emptyDict().str('x');
    importChain(p, marker).setitem().stop();
    await expectRefused(writeZipPth(p.bytes(), {}), 'builtins', '__import__', 'import chain');
    await expectRefused(writeLegacyPth(p.bytes(), []), 'builtins', '__import__', 'import chain (legacy)');
  });
});

describe('prototype pollution and path escapes', () => {
  it('names like __proto__ and constructor stay plain keys (pth, safetensors, TF.js)', async () => {
    const t = (name: string): PickledTensor => ({ ...W, name });
    const pkl = stateDictPickle([t('__proto__'), t('constructor'), t('toString')], {
      wrap: ['state_dict'],
      extras: (p) => p.str('__proto__').str('polluted'),
    });
    const reader = await openPth(memorySource(writeZipPth(pkl, { '0': STORAGE })));
    const pth = await reader.readAll();
    expect(Object.keys(pth).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getPrototypeOf(pth)).toBeNull();
    expect(Object.hasOwn(reader.metadata, '__proto__')).toBe(true);
    expect(reader.metadata[PROTO]).toBe('polluted');

    const header =
      '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"__proto__":"x"}}';
    const h = new TextEncoder().encode(header);
    const st = concatBytes([
      new Uint8Array(new BigUint64Array([BigInt(h.length)]).buffer),
      h,
      new Uint8Array(4),
    ]);
    const parsed = readSafetensors(st);
    expect(Object.keys(parsed.tensors)).toEqual(['__proto__']);
    expect(Object.keys(parsed.metadata)).toEqual(['__proto__']);
    expect(readSafetensors(writeSafetensors(parsed.tensors, parsed.metadata)).tensors[PROTO].shape).toEqual([
      1,
    ]);

    // JSON text, not an object literal: `__proto__` must arrive as an own key.
    const json =
      '{"weightsManifest":[{"paths":["a.bin"],"weights":[{"name":"__proto__","shape":[1],"dtype":"float32"}]}],' +
      '"userDefinedMetadata":{"__proto__":{"polluted":true},"constructor":"x"}}';
    const tfjs = await readTfjsArtifacts(json, { 'a.bin': new Uint8Array(4) });
    expect(Object.keys(tfjs)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('TF.js shard paths cannot leave the model folder', async () => {
    const model = join(dir, 'model');
    mkdirSync(model);
    writeFileSync(join(dir, 'secret.bin'), new Uint8Array(4));
    for (const path of ['../secret.bin', 'sub/../../secret.bin', join(dir, 'secret.bin'), '/etc/passwd']) {
      const json = {
        weightsManifest: [{ paths: [path], weights: [{ name: 'x', shape: [1], dtype: 'float32' }] }],
      };
      writeFileSync(join(model, 'model.json'), JSON.stringify(json));
      await expect(readTfjsFile(model)).rejects.toThrow(/leaves the model folder/);
    }
  });
});

describe('no side effects', () => {
  it('no marker file was created and no global or prototype changed', () => {
    expect(existsSync(marker)).toBe(false);
    expect(globalSnapshot()).toBe(before);
  });
});
