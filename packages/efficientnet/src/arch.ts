import { pyRound } from '@effdet/layers';

/**
 * timm's EfficientNet architecture strings (`_efficientnet_builder._decode_block_str`), decoded to data.
 *
 * A block string is `TYPE_opt_opt...`: `ds` depthwise-separable, `dsa` (ds with pointwise act, no skip),
 * `ir` inverted residual (MBConv), `er` edge residual (FusedMBConv), `cn` conv-bn-act. Options: `rN` repeats,
 * `kN` kernel, `sN` stride, `eN` expansion ratio, `cN` output channels, `seX` squeeze-excite ratio,
 * `aN` / `pN` expansion / pointwise kernel, `fcN` forced input channels (er), `nXX` activation override
 * (`re` relu, `r6` relu6, `hs` hard_swish, `sw` swish, `mi` mish), `skip` / `noskip`.
 */

export type BlockType = 'ds' | 'dsa' | 'ir' | 'er' | 'cn';

export interface BlockArgs {
  blockType: BlockType;
  outChannels: number;
  stride: number;
  /** Kernel of the main spatial conv: dw for ds/ir, conv_exp for er, conv for cn. */
  kernelSize: number;
  expKernelSize: number;
  pwKernelSize: number;
  expRatio: number;
  seRatio: number;
  /** cn: skip when shapes allow; ds/ir/er: `noSkip` disables it. */
  skip: boolean | null;
  noSkip: boolean;
  pwAct: boolean;
  forceInChannels: number;
  act: string | null;
}

const ACT_CODES: Record<string, string> = {
  re: 'relu',
  r6: 'relu6',
  hs: 'hard_swish',
  sw: 'swish',
  mi: 'mish',
};

/** Decodes one block string into its arguments and repeat count. */
export function decodeBlockString(blockStr: string): { args: BlockArgs; repeats: number } {
  const [type, ...ops] = blockStr.split('_');
  if (!['ds', 'dsa', 'ir', 'er', 'cn'].includes(type)) {
    throw new Error(
      `decodeBlockString: unknown block type '${type}' in '${blockStr}'; expected ds, dsa, ir, er or cn`,
    );
  }
  const options: Record<string, string> = {};
  let skip: boolean | null = null;
  for (const op of ops) {
    if (op === 'noskip') skip = false;
    else if (op === 'skip') skip = true;
    else if (op.startsWith('n')) {
      const act = ACT_CODES[op.slice(1)];
      if (!act) throw new Error(`decodeBlockString: unknown activation code '${op}' in '${blockStr}'`);
      options.n = act;
    } else {
      const m = /^(\D*)(\d.*)$/.exec(op);
      if (!m) throw new Error(`decodeBlockString: cannot parse option '${op}' in '${blockStr}'`);
      options[m[1]] = m[2];
    }
  }
  const need = (k: string): string => {
    const v = options[k];
    if (v === undefined) throw new Error(`decodeBlockString: '${blockStr}' has no '${k}' option`);
    return v;
  };
  const blockType = type as BlockType;
  const args: BlockArgs = {
    blockType,
    outChannels: Number.parseInt(need('c'), 10),
    stride: Number.parseInt(need('s'), 10),
    kernelSize: Number.parseInt(need('k'), 10),
    expKernelSize: options.a ? Number.parseInt(options.a, 10) : 1,
    pwKernelSize: options.p ? Number.parseInt(options.p, 10) : 1,
    expRatio: options.e ? Number.parseFloat(options.e) : 1,
    seRatio: options.se ? Number.parseFloat(options.se) : 0,
    skip: blockType === 'cn' ? skip === true : null,
    noSkip: blockType === 'dsa' || skip === false,
    pwAct: blockType === 'dsa',
    forceInChannels: options.fc ? Number.parseInt(options.fc, 10) : 0,
    act: options.n ?? null,
  };
  if (blockType === 'er') {
    // For er the k option is the expansion conv's kernel.
    args.expKernelSize = args.kernelSize;
  }
  return { args, repeats: Number.parseInt(need('r'), 10) };
}

/**
 * Scales one stage's repeats by `multiplier` (timm `_scale_stage_depth`): the stage total is ceil-scaled and
 * redistributed from the last block string backwards.
 */
export function scaleStageDepth(
  repeats: number[],
  multiplier: number,
  trunc: 'ceil' | 'round' = 'ceil',
): number[] {
  let total = repeats.reduce((a, b) => a + b, 0);
  let scaledTotal = trunc === 'ceil' ? Math.ceil(total * multiplier) : Math.trunc(total * multiplier);
  const out: number[] = [];
  for (const r of [...repeats].reverse()) {
    const rs = Math.max(1, pyRound((r / total) * scaledTotal));
    out.push(rs);
    total -= r;
    scaledTotal -= rs;
  }
  return out.reverse();
}

/**
 * Decodes an architecture definition (list of stages, each a list of block strings) into per-stage block
 * arguments with depth scaling (timm `decode_arch_def`). `fixFirstLast` keeps the first and last stage
 * depth unscaled (EfficientNet-Lite).
 */
export function decodeArchDef(
  archDef: readonly (readonly string[])[],
  depthMultiplier: number | readonly number[] = 1,
  options: { fixFirstLast?: boolean } = {},
): BlockArgs[][] {
  const mults = typeof depthMultiplier === 'number' ? archDef.map(() => depthMultiplier) : depthMultiplier;
  if (mults.length !== archDef.length) {
    throw new Error(
      `decodeArchDef: depthMultiplier has ${mults.length} entries for ${archDef.length} stages; they must match`,
    );
  }
  return archDef.map((stage, i) => {
    const decoded = stage.map(decodeBlockString);
    const fixed = options.fixFirstLast && (i === 0 || i === archDef.length - 1);
    const reps = scaleStageDepth(
      decoded.map((d) => d.repeats),
      fixed ? 1 : mults[i],
    );
    const blocks: BlockArgs[] = [];
    decoded.forEach((d, j) => {
      for (let r = 0; r < reps[j]; r++) blocks.push({ ...d.args });
    });
    return blocks;
  });
}
