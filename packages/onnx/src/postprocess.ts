/**
 * effdet's detection post-processing as ONNX nodes (the same steps as `postProcessArrays` in
 * `@effdet/effdet`): flatten the per-level head outputs in NHWC order, top-k over every anchor x class logit,
 * decode the chosen boxes against the anchors (constants), sigmoid, optional clip to the resized image area,
 * per-class NonMaxSuppression (IoU > threshold suppresses), the best `maxDetections` kept boxes in score
 * order, optional rescale to original-image pixels, zero rows after the last detection.
 *
 * Order and ties: NonMaxSuppression and the final TopK get the candidates' rank (k, k-1, ..., 1) as their
 * score, so boxes are visited in the top-k order (score descending, ties in index order), exactly as the
 * TypeScript post-processing (a stable sort) visits them; the real scores are gathered afterwards.
 */
import { type EffDetConfig, featSizes, generateAnchorBoxes, numAnchors } from '@effdet/effdet';
import { GraphBuilder } from './graph.js';

export interface PostprocessGraphOptions {
  /** Candidates kept by the top-k (default: the config's `maxDetectionPoints`, 5000). */
  maxDetectionPoints?: number;
  /** Rows per image (default: the config's `maxDetPerImage`, 100). */
  maxDetections?: number;
  /** NMS IoU threshold (default 0.5). */
  iouThreshold?: number;
  /**
   * Add the inputs `img_scale` `[B]` (original / input) and `img_size` `[B, 2]` (original width, height): boxes
   * are clipped to the resized image area before NMS and returned in original-image pixels, as `detect()` does.
   * Default true.
   */
  imageInfo?: boolean;
  /** Also output the decoded top-k candidates (`candidate_boxes`, `candidate_scores`, `candidate_classes`). */
  candidates?: boolean;
  /** Also output the raw head outputs `class.i` / `box.i`. */
  rawOutputs?: boolean;
  /**
   * How the top-k over every anchor x class logit runs: 'two-stage' (default: rank anchors by their best class,
   * then take the top k among the classes of the best k anchors; 3-4x less work) or 'full' (one TopK over all
   * N * C logits). They pick the same candidates except when logits tie exactly at the k-th anchor maximum.
   */
  topk?: 'two-stage' | 'full';
}

/** The graph-output values of the post-processing. */
export interface PostprocessValues {
  /** `[B, M, 6]` x1, y1, x2, y2, score, class (1-based; zero rows pad). */
  detections: string;
  /** `[B, M, 4]`. */
  boxes: string;
  /** `[B, M]`. */
  scores: string;
  /** `[B, M]` int64, 1-based, 0 for padding. */
  classes: string;
  /** `[B]` int64. */
  numDetections: string;
  candidates?: { boxes: string; scores: string; classes: string };
  /** Rows per image M and candidates k. */
  m: number;
  k: number;
}

/**
 * Appends the post-processing to `g`. `classOut[l]` / `boxOut[l]` are the per-level head outputs as NHWC
 * `[B, h, w, A*C]` / `[B, h, w, A*4]` values (already in TF layout).
 */
export function buildPostprocess(
  g: GraphBuilder,
  config: Readonly<EffDetConfig>,
  classOut: readonly string[],
  boxOut: readonly string[],
  options: PostprocessGraphOptions = {},
  batchDim: number | string = 'batch',
  /**
   * Flattened head outputs the caller has already (then `classOut` / `boxOut` are not read):
   * `cls` `[B, N * C]` and `box` `[B, N, 4]` in the order of step 1.
   */
  flat: { cls?: string; box?: string } = {},
): PostprocessValues {
  const C = config.numClasses;
  const anchors = generateAnchorBoxes(config);
  const N = anchors.length / 4;
  const maxPoints = options.maxDetectionPoints ?? config.maxDetectionPoints;
  const maxDet = options.maxDetections ?? config.maxDetPerImage;
  const iou = options.iouThreshold ?? 0.5;
  for (const [name, v] of [
    ['maxDetectionPoints', maxPoints],
    ['maxDetections', maxDet],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`buildPostprocess: ${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isFinite(iou))
    throw new Error(`buildPostprocess: iouThreshold must be a finite number, got ${iou}`);
  const k = Math.min(maxPoints, N * C);
  const m = Math.min(maxDet, k);
  const prev = g.scope;
  g.scope = 'postprocess';
  const i64 = (v: number[]) => g.int64(v);

  // 1. flatten: [B, N * C] logits, [B, N, 4] codes (NHWC order = anchor-major, class-minor).
  const concat = (vs: string[]) => (vs.length === 1 ? vs[0] : g.op('Concat', vs, { axis: { i: 1 } }));
  const cls = flat.cls ?? concat(classOut.map((c) => g.op('Reshape', [c, i64([0, -1])])));
  const box = flat.box ?? concat(boxOut.map((b) => g.op('Reshape', [b, i64([0, -1, 4])])));

  // 2. top-k logits.
  const cConst = g.scalarInt64(C);
  let values: string;
  let anchorIdx: string;
  let classIdx: string;
  const twoStage = (options.topk ?? 'two-stage') === 'two-stage' && k < N;
  if (twoStage) {
    // The top k of N * C logits lie in the k anchors with the largest class maximum (ties at the cut aside):
    // rank anchors by their maximum, gather those anchors' rows in anchor order, take the top k of k * C.
    const cls3 = g.op('Reshape', [cls, i64([0, N, C])]);
    const amax =
      g.opset >= 18
        ? g.op('ReduceMax', [cls3, i64([2])], { keepdims: { i: 0 } })
        : g.op('ReduceMax', [cls3], { axes: { ints: [2] }, keepdims: { i: 0 } });
    const [bestMax, bestAnchors] = g.node(
      'TopK',
      [amax, i64([k])],
      { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } },
      {
        numOutputs: 2,
        dtypes: ['float32', 'int64'],
      },
    );
    const [sortedAnchors] = g.node(
      'TopK',
      [bestAnchors, i64([k])],
      { axis: { i: 1 }, largest: { i: 0 }, sorted: { i: 1 } },
      { numOutputs: 2, dtypes: ['int64', 'int64'] },
    );
    const rows = g.op('GatherND', [cls3, g.op('Unsqueeze', [sortedAnchors, i64([2])])], {
      batch_dims: { i: 1 },
    });
    // Every top-k logit is >= t, the smallest of the k anchor maxima (those k maxima are k logits >= t): the
    // others become -inf, which changes no result and lets TopK skip them (3-4x faster).
    const t = g.op('Unsqueeze', [
      g.opset >= 18
        ? g.op('ReduceMin', [bestMax, i64([1])], { keepdims: { i: 1 } })
        : g.op('ReduceMin', [bestMax], { axes: { ints: [1] }, keepdims: { i: 1 } }),
      i64([2]),
    ]);
    const below = g.op('Less', [rows, t], {}, { dtypes: ['bool'] });
    const masked = g.op(
      'Where',
      [below, g.scalarFloat(Number.NEGATIVE_INFINITY), rows],
      {},
      { dtypes: ['float32'] },
    );
    const [v, pos] = g.node(
      'TopK',
      [g.op('Reshape', [masked, i64([0, -1])]), i64([k])],
      { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } },
      { numOutputs: 2, dtypes: ['float32', 'int64'] },
    );
    values = v;
    const local = g.op('Div', [pos, cConst]);
    classIdx = g.op('Sub', [pos, g.op('Mul', [local, cConst])]);
    anchorIdx = g.op('GatherElements', [sortedAnchors, local], { axis: { i: 1 } });
  } else {
    const [v, indices] = g.node(
      'TopK',
      [cls, i64([k])],
      { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } },
      {
        numOutputs: 2,
        dtypes: ['float32', 'int64'],
      },
    );
    values = v;
    anchorIdx = g.op('Div', [indices, cConst]);
    classIdx = g.op('Sub', [indices, g.op('Mul', [anchorIdx, cConst])]);
  }

  // 3. decode (the same float32 steps as decodeBoxes): anchors as centre / size constants.
  const ctr = new Float32Array(N * 4);
  const f = Math.fround;
  for (let i = 0; i < N; i++) {
    const [y1, x1, y2, x2] = [anchors[4 * i], anchors[4 * i + 1], anchors[4 * i + 2], anchors[4 * i + 3]];
    ctr[4 * i] = f(f(y1 + y2) / 2);
    ctr[4 * i + 1] = f(f(x1 + x2) / 2);
    ctr[4 * i + 2] = f(y2 - y1);
    ctr[4 * i + 3] = f(x2 - x1);
  }
  const anchorConst = g.constant({ dtype: 'float32', dims: [N, 4], data: ctr }, 'postprocess.anchors_yx_hw');
  const codes = g.op('GatherND', [box, g.op('Unsqueeze', [anchorIdx, i64([2])])], { batch_dims: { i: 1 } });
  const anc = g.op('Gather', [anchorConst, anchorIdx], { axis: { i: 0 } });
  const [ty, tx, th, tw] = g.node('Split', [codes, i64([1, 1, 1, 1])], { axis: { i: 2 } }, { numOutputs: 4 });
  const [yca, xca, ha, wa] = g.node('Split', [anc, i64([1, 1, 1, 1])], { axis: { i: 2 } }, { numOutputs: 4 });
  const two = g.scalarFloat(2);
  const w = g.op('Mul', [g.op('Exp', [tw]), wa]);
  const h = g.op('Mul', [g.op('Exp', [th]), ha]);
  const yc = g.op('Add', [g.op('Mul', [ty, ha]), yca]);
  const xc = g.op('Add', [g.op('Mul', [tx, wa]), xca]);
  const hh = g.op('Div', [h, two]);
  const hw = g.op('Div', [w, two]);
  let boxes = g.op(
    'Concat',
    [g.op('Sub', [xc, hw]), g.op('Sub', [yc, hh]), g.op('Add', [xc, hw]), g.op('Add', [yc, hh])],
    { axis: { i: 2 } },
  );
  const scores = g.op('Sigmoid', [values]);
  const candidates = options.candidates ? { boxes, scores, classes: classIdx } : undefined;

  // 4. clip to the resized image area (original size / scale).
  let scaleB11: string | null = null;
  if (options.imageInfo ?? true) {
    const imgScale = g.addInput('img_scale', 'float32', [batchDim], 'original / input scale per image');
    const imgSize = g.addInput('img_size', 'float32', [batchDim, 2], 'original width, height per image');
    const lim = g.op('Div', [imgSize, g.op('Unsqueeze', [imgScale, i64([1])])]); // [B, 2] = w, h limits
    const lim4 = g.op('Unsqueeze', [g.op('Concat', [lim, lim], { axis: { i: 1 } }), i64([1])]); // [B, 1, 4]
    boxes = g.op('Min', [g.op('Max', [boxes, g.scalarFloat(0)]), lim4]);
    scaleB11 = g.op('Unsqueeze', [imgScale, i64([1, 2])]);
  }

  // 5. per-class NMS on rank scores: [B, C, k] holds k - position for the candidate's own class, -1 elsewhere.
  const rank = g.constant(
    { dtype: 'float32', dims: [1, k], data: Float32Array.from({ length: k }, (_, i) => k - i) },
    'postprocess.rank',
  );
  const rankBk = g.op('Expand', [rank, g.op('Shape', [scores], {}, { dtypes: ['int64'] })]);
  const classRange = g.constant(
    { dtype: 'int64', dims: [1, C, 1], data: Array.from({ length: C }, (_, i) => i) },
    'postprocess.class_ids',
  );
  const isClass = g.op(
    'Equal',
    [g.op('Unsqueeze', [classIdx, i64([1])]), classRange],
    {},
    { dtypes: ['bool'] },
  );
  const minusOne = g.scalarFloat(-1);
  const nmsScores = g.op(
    'Where',
    [isClass, g.op('Unsqueeze', [rankBk, i64([1])]), minusOne],
    {},
    { dtypes: ['float32'] },
  );
  const selected = g.op(
    'NonMaxSuppression',
    [boxes, nmsScores, g.int64([m]), g.float([iou]), g.float([-0.5])],
    { center_point_box: { i: 0 } },
    { dtypes: ['int64'] },
  );
  // kept[b, i] = rank score of candidate i if NMS kept it, else -1.
  const bi = g.op('Gather', [selected, i64([0, 2])], { axis: { i: 1 } });
  const keptRank = g.op('GatherND', [rankBk, bi]);
  const minusOnes = g.op('Expand', [minusOne, g.op('Shape', [scores], {}, { dtypes: ['int64'] })]);
  const kept = g.op('ScatterND', [minusOnes, bi, keptRank]);

  // 6. the best m kept candidates in visiting order.
  const [topRank, topIdx] = g.node(
    'TopK',
    [kept, i64([m])],
    { axis: { i: 1 }, largest: { i: 1 }, sorted: { i: 1 } },
    {
      numOutputs: 2,
      dtypes: ['float32', 'int64'],
    },
  );
  const valid = g.op('Greater', [topRank, g.scalarFloat(0)], {}, { dtypes: ['bool'] });
  const validF = g.op('Cast', [valid], { to: { i: 1 } }, { dtypes: ['float32'] });
  let outBoxes = g.op('GatherND', [boxes, g.op('Unsqueeze', [topIdx, i64([2])])], { batch_dims: { i: 1 } });
  if (scaleB11) outBoxes = g.op('Mul', [outBoxes, scaleB11]);
  outBoxes = g.op('Mul', [outBoxes, g.op('Unsqueeze', [validF, i64([2])])]);
  const outScores = g.op('Mul', [g.op('GatherElements', [scores, topIdx], { axis: { i: 1 } }), validF]);
  const cls1 = g.op('Add', [
    g.op('GatherElements', [classIdx, topIdx], { axis: { i: 1 } }),
    g.scalarInt64(1),
  ]);
  const outClasses = g.op('Mul', [cls1, g.op('Cast', [valid], { to: { i: 7 } }, { dtypes: ['int64'] })]);
  const clsF = g.op('Cast', [outClasses], { to: { i: 1 } }, { dtypes: ['float32'] });
  const detections = g.op(
    'Concat',
    [outBoxes, g.op('Unsqueeze', [outScores, i64([2])]), g.op('Unsqueeze', [clsF, i64([2])])],
    { axis: { i: 2 } },
  );
  const numDetections = g.op(
    'ReduceSum',
    [g.op('Cast', [valid], { to: { i: 7 } }, { dtypes: ['int64'] }), i64([1])],
    { keepdims: { i: 0 } },
  );
  g.scope = prev;
  return {
    detections,
    boxes: outBoxes,
    scores: outScores,
    classes: outClasses,
    numDetections,
    candidates,
    m,
    k,
  };
}

/**
 * The post-processing alone as an ONNX model: inputs `class.i` `[B, h, w, A*C]` and `box.i` `[B, h, w, A*4]`
 * (levels minLevel..maxLevel, NHWC, as `exportOnnx` writes them), plus `img_scale` / `img_size` with
 * `imageInfo`; outputs as `exportOnnx` with `withPostprocess`.
 */
export function buildPostprocessModel(
  config: Readonly<EffDetConfig>,
  options: PostprocessGraphOptions & { opset?: number; batch?: number | 'dynamic' } = {},
): Uint8Array {
  const g = new GraphBuilder(options.opset ?? 17);
  const b = options.batch ?? 'dynamic';
  const batchDim = b === 'dynamic' ? 'batch' : b;
  const sizes = featSizes(config.imageSize, config.maxLevel);
  const a = numAnchors(config);
  const cls: string[] = [];
  const box: string[] = [];
  for (let l = config.minLevel; l <= config.maxLevel; l++) {
    const [h, w] = sizes[l];
    cls.push(g.addInput(`class.${l - config.minLevel}`, 'float32', [batchDim, h, w, a * config.numClasses]));
  }
  for (let l = config.minLevel; l <= config.maxLevel; l++) {
    const [h, w] = sizes[l];
    box.push(g.addInput(`box.${l - config.minLevel}`, 'float32', [batchDim, h, w, a * 4]));
  }
  const pv = buildPostprocess(g, config, cls, box, options, batchDim);
  g.addOutput('detections', pv.detections, [batchDim, pv.m, 6]);
  g.addOutput('boxes', pv.boxes, [batchDim, pv.m, 4]);
  g.addOutput('scores', pv.scores, [batchDim, pv.m]);
  g.addOutput('classes', pv.classes, [batchDim, pv.m]);
  g.addOutput('num_detections', pv.numDetections, [batchDim]);
  if (pv.candidates) {
    g.addOutput('candidate_boxes', pv.candidates.boxes, [batchDim, pv.k, 4]);
    g.addOutput('candidate_scores', pv.candidates.scores, [batchDim, pv.k]);
    g.addOutput('candidate_classes', pv.candidates.classes, [batchDim, pv.k]);
  }
  return g.encode({
    graphName: `${config.name}_postprocess`,
    producerVersion: '0.1.0',
    metadata: { model: config.name, task: 'detection-postprocess', config: JSON.stringify(config) },
  });
}
