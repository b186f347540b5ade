/**
 * How the CLI talks to a person: plain sentences on stdout, errors on stderr, and a
 * progress bar for long work when stdout is a terminal (a log file gets a line per step
 * instead of bar redraws).
 */
import cliProgress from 'cli-progress';

export interface Out {
  line(text?: string): void;
  error(text: string): void;
  /** A bar for `total` units of `unit`; `update(done)` moves it, `stop()` ends it. */
  progress(label: string, total: number, unit: string): { update(done: number): void; stop(): void };
}

export function consoleOut(stream: NodeJS.WriteStream = process.stdout): Out {
  return {
    line: (text = '') => stream.write(`${text}\n`),
    error: (text) => process.stderr.write(`${text}\n`),
    progress(label, total, unit) {
      if (!stream.isTTY) {
        let lastTenth = -1;
        return {
          update(done) {
            const tenth = Math.floor((10 * done) / Math.max(1, total));
            if (tenth !== lastTenth) {
              lastTenth = tenth;
              stream.write(`${label}: ${Math.min(100, tenth * 10)}% (${done} of ${total} ${unit})\n`);
            }
          },
          stop() {},
        };
      }
      const bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted} left`, hideCursor: true, stream },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return { update: (done) => bar.update(done), stop: () => bar.stop() };
    },
  };
}

/** An Out that keeps what was printed, for tests. */
export function memoryOut(): Out & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    line: (text = '') => lines.push(text),
    error: (text) => errors.push(text),
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
