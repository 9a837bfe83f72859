/**
 * A progress display for long runs, written to stderr: on a terminal one bar redrawn in place
 * (`validate [#####-----] 120/500 24% 3.1 images/s ETA 2:03`), otherwise (a file, a pipe, CI logs) plain lines at
 * each tenth of the work and at most every `plainIntervalMs`, so logs stay short.
 */

/** What a progress display writes to: `process.stderr` or anything with `write` (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Units of work in all (e.g. images). */
  total: number;
  /** Shown first on every line (default 'progress'). */
  label?: string;
  /** Plural name of a unit (default 'images'). */
  unit?: string;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /** Redraw in place; default `stream.isTTY`. */
  tty?: boolean;
  /** Minimum time between two redraws on a terminal (default 100 ms). */
  ttyIntervalMs?: number;
  /** Plain mode: a line at each tenth of the work, or when this much time passed since the last line (default 30 s). */
  plainIntervalMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** `m:ss`, or `h:mm:ss` from an hour on; `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function formatRate(r: number): string {
  if (!Number.isFinite(r)) return '-';
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

export class Progress {
  readonly total: number;
  private done = 0;
  private readonly label: string;
  private readonly unit: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly ttyInterval: number;
  private readonly plainInterval: number;
  private readonly now: () => number;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastTenth = 0;
  private finished = false;
  /** Lines written in plain mode (or redraws on a terminal). */
  lines = 0;

  constructor(options: ProgressOptions) {
    if (!(Number.isInteger(options.total) && options.total >= 0)) {
      throw new Error(`Progress: argument 'total' expected a non-negative integer, got ${options.total}`);
    }
    this.total = options.total;
    this.label = options.label ?? 'progress';
    this.unit = options.unit ?? 'images';
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? !!this.stream.isTTY;
    this.ttyInterval = options.ttyIntervalMs ?? 100;
    this.plainInterval = options.plainIntervalMs ?? 30_000;
    this.now = options.now ?? (() => performance.now());
    this.start = this.now();
    this.lastDraw = this.start;
    if (this.tty) this.draw(true);
  }

  /** Units done so far. */
  get count(): number {
    return this.done;
  }

  /** Seconds since the display started. */
  get elapsed(): number {
    return (this.now() - this.start) / 1000;
  }

  /** Units per second so far. */
  get rate(): number {
    const e = this.elapsed;
    return e > 0 ? this.done / e : Number.NaN;
  }

  /** Marks `n` more units done and redraws when due. */
  tick(n = 1): void {
    if (this.finished) return;
    this.done = Math.min(this.total, this.done + n);
    if (this.tty) {
      this.draw(this.done === this.total);
      return;
    }
    const tenth = this.total > 0 ? Math.floor((this.done * 10) / this.total) : 10;
    const t = this.now();
    if (tenth > this.lastTenth || t - this.lastDraw >= this.plainInterval) {
      this.lastTenth = tenth;
      if (this.done < this.total) this.plainLine(t);
    }
  }

  /** The status text: `120/500 24% 3.10 images/s ETA 2:03`. */
  status(): string {
    const pct = this.total > 0 ? Math.floor((this.done * 100) / this.total) : 100;
    const rate = this.rate;
    const eta = this.done > 0 && rate > 0 ? (this.total - this.done) / rate : Number.NaN;
    const w = String(this.total).length;
    return `${String(this.done).padStart(w)}/${this.total} ${String(pct).padStart(3)}% ${formatRate(rate)} ${this.unit}/s ETA ${formatDuration(eta)}`;
  }

  private plainLine(t: number): void {
    this.lastDraw = t;
    this.lines++;
    this.stream.write(`${this.label}: ${this.status()}\n`);
  }

  private draw(force: boolean): void {
    const t = this.now();
    if (!force && t - this.lastDraw < this.ttyInterval) return;
    this.lastDraw = t;
    const status = this.status();
    const cols = this.stream.columns ?? 80;
    const barWidth = Math.max(10, Math.min(40, cols - this.label.length - status.length - 6));
    const filled = this.total > 0 ? Math.round((barWidth * this.done) / this.total) : barWidth;
    const bar = `${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}`;
    this.lines++;
    // \r: back to the line start; \x1b[K: clear what a longer previous line left
    this.stream.write(`\r${this.label} [${bar}] ${status}\x1b[K`);
  }

  /** Writes the final line: `label: 500/500 images in 2:41 (3.10 images/s)`. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const line = `${this.label}: ${this.done}/${this.total} ${this.unit} in ${formatDuration(this.elapsed)} (${formatRate(this.rate)} ${this.unit}/s)`;
    this.lines++;
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }
}
