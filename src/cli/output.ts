/**
 * How the CLI talks to a person: data and results on stdout, errors and notes on stderr,
 * and a progress bar for long work only when stderr is a terminal (so that a pipe or a log
 * file gets the data alone, never bar redraws or percentages).
 *
 * A reader that goes away (`ptpvts status | head -4`) is not an error: what is still to
 * print is dropped and the command ends as it would have, without a stack trace.
 */
import cliProgress from 'cli-progress';

export interface Out {
  /** Data and results: stdout. */
  line(text?: string): void;
  /** Errors: stderr. */
  error(text: string): void;
  /** Messages for the person that are not data (what was made, what is awaited): stderr. */
  note(text: string): void;
  /** A bar for `total` units of `unit`; `update(done)` moves it, `stop()` ends it. Shows nothing when stderr is not a terminal. */
  progress(label: string, total: number, unit: string): { update(done: number): void; stop(): void };
}

const guarded = new WeakMap<NodeJS.WritableStream, { closed: boolean }>();

/**
 * Keeps track of whether `stream` can still be written: an EPIPE (the reader closed the
 * pipe) marks it closed quietly; any other write error is said once on stderr and makes
 * the exit code 1. Idempotent.
 */
export function guardStream(stream: NodeJS.WritableStream, name: string): { readonly closed: boolean } {
  let g = guarded.get(stream);
  if (g) return g;
  const state = { closed: false };
  g = state;
  guarded.set(stream, state);
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (state.closed) return;
    state.closed = true;
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    process.exitCode = 1;
    if (stream !== process.stderr && !guarded.get(process.stderr)?.closed) process.stderr.write(`ptpvts: cannot write to ${name}: ${e.message}\n`);
  });
  return state;
}

export function consoleOut(stream: NodeJS.WriteStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Out {
  const o = guardStream(stream, stream === process.stdout ? 'stdout' : 'the output');
  const e = guardStream(err, 'stderr');
  const write = (s: NodeJS.WriteStream, g: { readonly closed: boolean }, text: string): void => {
    if (!g.closed && !s.destroyed) s.write(text);
  };
  return {
    line: (text = '') => write(stream, o, `${text}\n`),
    error: (text) => write(err, e, `${text}\n`),
    note: (text) => write(err, e, `${text}\n`),
    progress(label, total, unit) {
      if (!err.isTTY) return { update() {}, stop() {} };
      const bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted} left`, hideCursor: true, stream: err },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return { update: (done) => bar.update(done), stop: () => bar.stop() };
    },
  };
}

/** An Out that keeps what was printed, for tests: `lines` is stdout, `errors` stderr (notes included). */
export function memoryOut(): Out & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    line: (text = '') => lines.push(text),
    error: (text) => errors.push(text),
    note: (text) => errors.push(text),
    progress: (label, total, unit) => ({ update: () => {}, stop: () => lines.push(`${label}: done (${total} ${unit})`) }),
  };
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function hex(n: number, width = 4): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}
