import { formatDuration, Progress } from './progress.js';

/** The terminal's clear-to-end-of-line sequence, dropped before matching. */
const CLEAR = '\u001b[K';
const plain = (s: string) => s.split(CLEAR).join('<K>');

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { stream: { write: (s: string) => chunks.push(s), isTTY, columns: 100 }, chunks };
}

describe('Progress', () => {
  it('plain mode (not a terminal): a line at each tenth, rate and ETA, and a closing line', () => {
    let t = 0;
    const { stream, chunks } = sink(false);
    const p = new Progress({ total: 20, label: 'validate', stream, now: () => t });
    for (let i = 0; i < 20; i++) {
      t += 500; // 2 images/s
      p.tick();
    }
    p.finish();
    // 20 images: a line every 2 (each tenth) except the last, which the closing line reports
    expect(chunks).toHaveLength(10);
    expect(chunks[0]).toBe('validate:  2/20  10% 2.00 images/s ETA 0:09\n');
    expect(chunks[4]).toBe('validate: 10/20  50% 2.00 images/s ETA 0:05\n');
    expect(chunks[9]).toBe('validate: 20/20 images in 0:10 (2.00 images/s)\n');
    expect(chunks.every((c) => !c.includes('\r'))).toBe(true);
  });

  it('plain mode: a slow run also gets a line every plainIntervalMs', () => {
    let t = 0;
    const { stream, chunks } = sink(false);
    const p = new Progress({ total: 1000, label: 'x', stream, now: () => t, plainIntervalMs: 10_000 });
    t = 11_000;
    p.tick(); // 0.1 %: no tenth crossed, but 11 s since the start
    t = 12_000;
    p.tick(); // 1 s later: nothing
    expect(chunks).toEqual(['x:    1/1000   0% 0.09 images/s ETA 3:03:09\n']);
  });

  it('terminal mode: one bar redrawn in place, throttled, ending with a newline', () => {
    let t = 0;
    const { stream, chunks } = sink(true);
    const p = new Progress({ total: 4, label: 'validate', stream, now: () => t, ttyIntervalMs: 100 });
    expect(plain(chunks[0])).toMatch(/^\rvalidate \[-+\] 0\/4 +0% - images\/s ETA --:--<K>$/);
    t = 50;
    p.tick(); // within 100 ms of the last draw: skipped
    expect(chunks).toHaveLength(1);
    t = 1000;
    p.tick();
    expect(plain(chunks[1])).toMatch(/^\rvalidate \[#+-+\] 2\/4 +50% 2.00 images\/s ETA 0:01<K>$/);
    t = 1010;
    p.tick(2); // the last one is always drawn
    expect(chunks[2]).toMatch(/\[#+\] 4\/4 100%/);
    p.finish();
    expect(plain(chunks[3])).toBe('\rvalidate: 4/4 images in 0:01 (3.96 images/s)<K>\n');
    p.tick(); // after finish: ignored
    expect(chunks).toHaveLength(4);
  });

  it('an empty run and bad totals', () => {
    const { stream, chunks } = sink(false);
    const p = new Progress({ total: 0, stream, now: () => 0 });
    p.finish();
    expect(chunks).toEqual(['progress: 0/0 images in 0:00 (- images/s)\n']);
    expect(() => new Progress({ total: -1, stream })).toThrow(
      /Progress: argument 'total' expected a non-negative integer/,
    );
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Number.NaN)).toBe('--:--');
  });
});
