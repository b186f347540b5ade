/**
 * The host side of the processes campaign: writers that write whole volumes through the VTCs'
 * control endpoints (write-volume: scratch mount, blocks, close; immediate and deferred copy
 * modes) and a ledger of every attempt and every acknowledgement, and the read-back check.
 *
 * Each volume's content names itself (volser and attempt number in a header) and its bytes
 * come from a seeded stream, so a read identifies exactly which attempt it returned and
 * whether that attempt's bytes are intact.
 */
import { createHash } from 'node:crypto';
import type { CloseResult } from '../../../src/vtc/agent.js';
import type { ControlClient } from '../../../src/vtc/control-client.js';

/** A seeded PRNG (mulberry32): campaigns replay from PTPVTS_POWER_SEED. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const MAGIC = 'PTPCUT1';

/** The bytes of attempt `attempt` of `volser`: a header naming both, then `size` seeded bytes. */
export function volumeData(volser: string, attempt: number, size: number): Uint8Array {
  const head = Buffer.from(`${MAGIC} ${volser} ${attempt} ${size}\n`);
  const body = Buffer.alloc(size);
  const r = rng((attempt * 2654435761) ^ [...volser].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 7));
  for (let i = 0; i < size; i += 4) body.writeUInt32LE(Math.floor(r() * 0x1_0000_0000), i);
  return Buffer.concat([head, body]);
}

/** Which attempt a read returned, or null when the bytes are not one of ours at all. */
export function parseVolume(data: Uint8Array): { volser: string; attempt: number } | null {
  const nl = Buffer.from(data.subarray(0, 64)).indexOf(10);
  if (nl < 0) return null;
  const m = new RegExp(`^${MAGIC} (\\S+) (\\d+) (\\d+)$`).exec(Buffer.from(data.subarray(0, nl)).toString('latin1'));
  return m === null ? null : { volser: m[1]!, attempt: Number(m[2]) };
}

export interface Attempt {
  readonly attempt: number;
  readonly sha: string;
  readonly bytes: number;
  readonly copyMode: 'immediate' | 'deferred';
  readonly via: string;
  readonly at: number;
  /** Set once the close was acknowledged. */
  ack?: CloseResult;
  /** Set when the write was answered with an error: not acknowledged (its data may still be there). */
  error?: string;
}

/** Every attempt on one volume, written by one writer at a time, in order. */
export class VolumeLedger {
  readonly attempts = new Map<number, Attempt>();
  next = 1;
  /** The newest acknowledged attempt. */
  newest: Attempt | undefined;
  /** Generations of the acknowledgements, in order. */
  readonly gens: number[] = [];
  constructor(readonly volser: string) {}
  get acked(): number {
    return this.gens.length;
  }
}

/** A problem a check found, with the check's name. */
export interface Violation {
  readonly check: string;
  readonly detail: string;
}

const codeOf = (e: unknown): string => String((e as { code?: unknown }).code ?? (e as Error).name ?? 'EUNKNOWN');

/**
 * Writer loops, one per group of volumes (so one write per volume at a time). Each write picks
 * a running VTC and a copy mode; its acknowledgement (or error) goes into the ledger. While
 * {@link pause} waits, no new write starts.
 */
export class HostWriters {
  readonly ledgers: VolumeLedger[];
  /** Acknowledgements whose generation was not above an earlier acknowledgement's of the same volume. */
  readonly regressions: Violation[] = [];
  readonly errors = new Map<string, number>();
  #paused = false;
  #stopped = false;
  #inFlight = 0;
  #loops: Promise<void>[] = [];
  #wake: (() => void)[] = [];

  constructor(
    volsers: readonly string[],
    private readonly writers: number,
    private readonly clients: ReadonlyMap<string, ControlClient>,
    private readonly running: () => string[],
    private readonly rand: () => number,
    private readonly maxBytes: number,
  ) {
    this.ledgers = volsers.map((v) => new VolumeLedger(v));
  }

  start(): void {
    for (let w = 0; w < this.writers; w++) this.#loops.push(this.#loop(this.ledgers.filter((_, i) => i % this.writers === w)));
  }

  async #loop(mine: VolumeLedger[]): Promise<void> {
    while (!this.#stopped) {
      if (this.#paused) {
        await new Promise<void>((r) => this.#wake.push(r));
        continue;
      }
      const l = mine[Math.floor(this.rand() * mine.length)]!;
      const up = this.running();
      const via = up[Math.floor(this.rand() * up.length)];
      if (via === undefined) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const size = 4 * Math.floor((this.rand() * this.maxBytes) / 4);
      const a = l.next++;
      const data = volumeData(l.volser, a, size);
      const copyMode = this.rand() < 0.5 ? 'immediate' : 'deferred';
      const rec: Attempt = { attempt: a, sha: sha(data), bytes: data.length, copyMode, via, at: Date.now() };
      l.attempts.set(a, rec);
      this.#inFlight++;
      try {
        const r = await this.clients.get(via)!.writeVolume(l.volser, data, copyMode);
        rec.ack = r;
        const last = l.gens.at(-1);
        if (last !== undefined && r.generation <= last) {
          this.regressions.push({ check: 'generation-regressed', detail: `${l.volser} attempt ${a} acknowledged generation ${r.generation} via ${via}, not above the earlier acknowledged ${last} (attempt ${l.newest?.attempt})` });
        }
        l.gens.push(r.generation);
        l.newest = rec;
      } catch (e) {
        rec.error = `${codeOf(e)}: ${(e as Error).message}`.slice(0, 300);
        this.errors.set(codeOf(e), (this.errors.get(codeOf(e)) ?? 0) + 1);
        // Off-line or a VTC being restarted: no point hammering it.
        await new Promise((r) => setTimeout(r, 20 + this.rand() * 80));
      } finally {
        this.#inFlight--;
      }
    }
  }

  /** Stops new writes and waits for those in flight to be answered. */
  async pause(): Promise<void> {
    this.#paused = true;
    while (this.#inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  }

  resume(): void {
    this.#paused = false;
    for (const w of this.#wake.splice(0)) w();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.resume();
    await Promise.all(this.#loops);
  }

  get acked(): number {
    return this.ledgers.reduce((n, l) => n + l.acked, 0);
  }
  get attempted(): number {
    return this.ledgers.reduce((n, l) => n + l.attempts.size, 0);
  }
}

/**
 * Checks one read of `l` (writers paused): the newest acknowledged attempt, or an
 * unacknowledged one made after it, intact; never an older one, never bytes nobody wrote.
 * `read` is the data, or the error the read was answered with.
 */
export function checkRead(l: VolumeLedger, via: string, read: { data: Uint8Array; vts: string } | Error): Violation[] {
  const newest = l.newest;
  if (read instanceof Error) {
    if (newest === undefined) return [];
    // Held by a mount nobody will close (its VTC lost power mid-write): the data cannot be read
    // now, which is not the same finding as data gone. It is read again after a later cut.
    if (codeOf(read) === 'EVOLINUSE') return [{ check: 'stranded-mount', detail: `${l.volser} via ${via}: ${read.message.slice(0, 200)}; attempt ${newest.attempt} (generation ${newest.ack?.generation}) was acknowledged` }];
    return [{ check: 'acknowledged-unreadable', detail: `${l.volser} via ${via}: ${codeOf(read)}: ${read.message.slice(0, 200)}; attempt ${newest.attempt} (generation ${newest.ack?.generation}, ${newest.copyMode}, copies ${newest.ack?.copies.join(',')}) was acknowledged` }];
  }
  const id = parseVolume(read.data);
  const a = id === null || id.volser !== l.volser ? undefined : l.attempts.get(id.attempt);
  if (a === undefined) {
    const head = Buffer.from(read.data.subarray(0, 40)).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
    return [{ check: 'never-written', detail: `${l.volser} via ${via} from VTS ${read.vts}: ${read.data.length} bytes that no attempt wrote ("${head}")` }];
  }
  const out: Violation[] = [];
  if (sha(read.data) !== a.sha) out.push({ check: 'corrupt', detail: `${l.volser} via ${via} from VTS ${read.vts}: attempt ${a.attempt} read back as ${read.data.length} bytes, not the ${a.bytes} written (sha differs)` });
  if (newest !== undefined && a.attempt < newest.attempt) {
    out.push({ check: 'stale-read', detail: `${l.volser} via ${via} from VTS ${read.vts}: attempt ${a.attempt}${a.ack ? ` (generation ${a.ack.generation})` : ' (never acknowledged)'} served, but attempt ${newest.attempt} (generation ${newest.ack?.generation}, ${newest.copyMode}, copies ${newest.ack?.copies.join(',')}, queued ${newest.ack?.queued.join(',')}) was acknowledged` });
  }
  return out;
}
