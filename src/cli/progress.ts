/**
 * A progress bar on stderr. On a terminal it redraws one line (at most ten times a second); piped
 * or logged, it writes a plain line every tenth of the way, so logs stay readable.
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const started = Date.now();
  let lastDraw = 0;
  let lastTenth = -1;
  const line = (done: number, total: number) => {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    return { fraction, text: `${label} ${done}/${total} (${Math.floor(fraction * 100)}%, ${rate}/s)` };
  };
  return {
    update(done: number, total: number) {
      const { fraction, text } = line(done, total);
      if (stream.isTTY) {
        const now = Date.now();
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - text.length - 4));
        const filled = Math.round(fraction * width);
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
      } else {
        const tenth = Math.floor(fraction * 10);
        if (tenth === lastTenth) return;
        lastTenth = tenth;
        stream.write(`${text}\n`);
      }
    },
    finish() {
      if (stream.isTTY) stream.write('\n');
    },
  };
}

/** `1h02m`, `3m05s`, `42s`: how long, for a person. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface RateProgressOptions {
  /** Files (or items) the phase will have done at the end; may grow later through setTotal. */
  total: number;
  /** Bytes the phase moves; when given, the fraction and ETA follow bytes, not files. */
  totalBytes?: number;
  stream?: NodeJS.WriteStream;
  /** Piped or logged: one plain line this often (and one at the end). */
  lineIntervalMs?: number;
}

/**
 * A progress line with rates and an ETA: `uploading [####....] 1204/5000 files  12.1/50.3 MB
 * 24%  310 files/s  4.2 MB/s  ETA 12s`. Rates are over the last few seconds, so the ETA follows
 * the current pace rather than the average since the start. On a terminal it redraws in place; piped
 * or logged, it writes a line every few seconds.
 */
export function rateProgress(label: string, options: RateProgressOptions) {
  const stream = options.stream ?? process.stderr;
  const lineIntervalMs = options.lineIntervalMs ?? 5000;
  const WINDOW_MS = 5000;
  const started = Date.now();
  let total = options.total;
  let totalBytes = options.totalBytes;
  let done = 0;
  let bytes = 0;
  let lastDraw = 0;
  let finished = false;
  const samples: { at: number; done: number; bytes: number }[] = [{ at: started, done: 0, bytes: 0 }];

  /** Over the last few seconds while running; over the whole phase in the last line. */
  const rates = (overall: boolean) => {
    const now = Date.now();
    while (samples.length > 2 && now - samples[1].at > WINDOW_MS) samples.shift();
    const first = overall ? { at: started, done: 0, bytes: 0 } : samples[0];
    const seconds = (now - first.at) / 1000;
    if (seconds < (overall ? 0.001 : 0.5)) return { files: 0, bytes: 0 };
    return { files: (done - first.done) / seconds, bytes: (bytes - first.bytes) / seconds };
  };
  const text = (overall = false) => {
    const rate = rates(overall);
    const byBytes = totalBytes !== undefined && totalBytes > 0;
    const fraction = byBytes ? Math.min(1, bytes / (totalBytes as number)) : total > 0 ? Math.min(1, done / total) : 1;
    const remaining = byBytes ? ((totalBytes as number) - bytes) / rate.bytes : (total - done) / rate.files;
    const parts = [`${done}/${total} files`];
    if (totalBytes !== undefined) parts.push(`${(bytes / 1e6).toFixed(1)}/${(totalBytes / 1e6).toFixed(1)} MB`);
    parts.push(`${Math.floor(fraction * 100)}%`, `${rate.files.toFixed(rate.files < 10 ? 1 : 0)} files/s`);
    if (bytes > 0 || totalBytes !== undefined) parts.push(`${(rate.bytes / 1e6).toFixed(1)} MB/s`);
    if (fraction < 1) parts.push(`ETA ${Number.isFinite(remaining) && remaining > 0 ? formatDuration(remaining) : '?'}`);
    return { fraction, line: `${label} ${parts.join('  ')}` };
  };
  const draw = (force: boolean) => {
    const now = Date.now();
    if (stream.isTTY) {
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      const { fraction, line } = text(force);
      const width = Math.max(10, Math.min(30, (stream.columns ?? 100) - line.length - 4));
      const filled = Math.round(fraction * width);
      stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`);
    } else {
      // The complete state is written once, by finish, with the phase's average rate.
      const complete = totalBytes !== undefined && totalBytes > 0 ? bytes >= totalBytes : done >= total;
      if (!force && (now - lastDraw < lineIntervalMs || complete)) return;
      lastDraw = now;
      stream.write(`${text(force).line}\n`);
    }
  };
  // Piped output starts counting its interval now: the first plain line comes after a few seconds.
  if (!stream.isTTY) lastDraw = started;
  return {
    /** The phase's counters so far (not increments). */
    update(nextDone: number, nextBytes = bytes) {
      if (finished) return;
      done = nextDone;
      bytes = nextBytes;
      const now = Date.now();
      if (now - samples[samples.length - 1].at >= 250) samples.push({ at: now, done, bytes });
      draw(false);
    },
    setTotal(nextTotal: number, nextTotalBytes?: number) {
      total = nextTotal;
      if (nextTotalBytes !== undefined) totalBytes = nextTotalBytes;
    },
    /** Draws the last state once more and ends the line. */
    finish() {
      if (finished) return;
      draw(true);
      finished = true;
      if (stream.isTTY) stream.write('\n');
    },
  };
}

export type RateProgress = ReturnType<typeof rateProgress>;
