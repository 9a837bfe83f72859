// Test-only malicious pickle payloads (excluded from the package build). Each payload, if a real Python
// unpickler ran it, would execute a command that creates a marker file; our VM must refuse it.
import { concatBytes } from '../bytes.js';
import { PickleBuilder } from './builders.js';

const enc = new TextEncoder();

/** Ways a pickle reaches a callable and calls it. */
export const CALL_FORMS = [
  'GLOBAL+REDUCE',
  'STACK_GLOBAL+REDUCE',
  'INST',
  'OBJ',
  'NEWOBJ',
  'NEWOBJ_EX',
  'GLOBAL+BUILD',
  'protocol0 text',
] as const;
export type CallForm = (typeof CALL_FORMS)[number];

/**
 * What each dangerous global is called with so that the call would create `marker`. `text` spells the
 * strings with protocol 0's quoted STRING opcode instead of BINUNICODE.
 */
export function dangerousArgs(
  module: string,
  name: string,
  marker: string,
  text = false,
): (p: PickleBuilder) => void {
  const sh = `touch '${marker}'`;
  const py = `open(${JSON.stringify(marker)}, 'w').write('pwned')`;
  const str = (p: PickleBuilder, s: string) =>
    text ? p.raw(0x53, ...enc.encode(`'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'\n`)) : p.str(s);
  if (module === 'subprocess') {
    // Popen(['touch', marker])
    return (p) => {
      p.emptyList().mark();
      str(p, 'touch');
      str(p, marker);
      p.appends();
    };
  }
  if (name === 'eval' || name === 'exec') return (p) => str(p, py);
  if (name === '__import__') return (p) => str(p, 'os');
  return (p) => str(p, sh);
}

function shortStr(p: PickleBuilder, s: string): PickleBuilder {
  const b = enc.encode(s);
  return p.raw(0x8c, b.length, ...b);
}

/**
 * Pushes `module.name(args)` onto the pickle stack, reaching the callable with `form`. `args` pushes the
 * positional arguments (one or more values).
 */
export function pushCall(
  p: PickleBuilder,
  form: CallForm,
  module: string,
  name: string,
  args: (p: PickleBuilder) => void,
): PickleBuilder {
  switch (form) {
    case 'GLOBAL+REDUCE':
      p.global(module, name).mark();
      args(p);
      return p.tuple().reduce();
    case 'STACK_GLOBAL+REDUCE':
      shortStr(p, module);
      shortStr(p, name).raw(0x93, 0x94).mark();
      args(p);
      return p.tuple().reduce();
    case 'INST':
      p.mark();
      args(p);
      return p.raw(0x69, ...enc.encode(`${module}\n${name}\n`));
    case 'OBJ':
      p.mark();
      shortStr(p, module);
      shortStr(p, name).raw(0x93);
      args(p);
      return p.raw(0x6f);
    case 'NEWOBJ':
      p.global(module, name).mark();
      args(p);
      return p.tuple().raw(0x81);
    case 'NEWOBJ_EX':
      shortStr(p, module);
      shortStr(p, name).raw(0x93).mark();
      args(p);
      return p.tuple().emptyDict().raw(0x92);
    case 'GLOBAL+BUILD':
      // obj = module.name.__new__(...) then obj.__setstate__(state): the state carries the payload.
      p.global(module, name).emptyTuple().raw(0x81).emptyDict().str('cmd');
      args(p);
      return p.setitem().build();
    case 'protocol0 text':
      // c<module>\n<name>\n(S'...'\ntR  (protocol 0 spells strings as quoted text)
      p.raw(0x63, ...enc.encode(`${module}\n${name}\n`)).mark();
      args(p);
      return p.tuple().reduce();
  }
}

/**
 * `getattr(__import__('os'), 'system')('touch marker')`, with `__import__` reached first (memoised), so
 * that the first global the VM meets is `builtins.__import__`.
 */
export function importChain(p: PickleBuilder, marker: string): PickleBuilder {
  p.global('builtins', '__import__').mark().str('os').tuple().reduce().raw(0x71, 200).raw(0x30);
  p.global('builtins', 'getattr').mark().raw(0x68, 200).str('system').tuple().reduce();
  return p.mark().str(`touch '${marker}'`).tuple().reduce();
}

/** The leading pickles of a legacy torch.save file, with an optional replacement for the sys-info one. */
export function legacyHeader(sysInfo?: Uint8Array): Uint8Array {
  const magic = new PickleBuilder().proto(2).long1(0x1950a86a20f9469cfc6cn).stop().bytes();
  const version = new PickleBuilder().proto(2).int(1001).stop().bytes();
  const sys =
    sysInfo ??
    new PickleBuilder()
      .proto(2)
      .emptyDict()
      .mark()
      .str('protocol_version')
      .int(1001)
      .str('little_endian')
      .bool(true)
      .setitems()
      .stop()
      .bytes();
  return concatBytes([magic, version, sys]);
}
