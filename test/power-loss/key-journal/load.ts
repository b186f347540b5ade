/**
 * In-process writer for the key journal power-loss campaign: `concurrency` loops append
 * the numbered stream, several in flight (the native journal commits them in groups), and
 * now and then one compacts the journal onto the whole stream issued so far. Each record
 * counts as acknowledged only once its append resolved.
 */
import type { KeyJournalApi } from '../../../src/hotpath/journal-types.js';
import { record } from './records.js';

export class JournalLoad {
  issued = 0;
  /** Records 0..acked-1 are acknowledged (appends resolve in order). */
  acked = 0;
  compactions = 0;
  readonly errors: string[] = [];
  #stop = false;
  #loops: Promise<void>[] = [];
  #running = 0;
  #parked = 0;
  #held: Promise<void> | null = null;
  #release: () => void = () => undefined;

  constructor(
    readonly journal: KeyJournalApi,
    readonly first: number,
    concurrency: number,
    rand: () => number,
    compactChance: number,
  ) {
    this.issued = first;
    this.acked = first;
    for (let k = 0; k < concurrency; k++) this.#loops.push(this.#loop(rand, k === 0 ? compactChance : 0));
  }

  async #loop(rand: () => number, compactChance: number): Promise<void> {
    this.#running++;
    try {
      await this.#run(rand, compactChance);
    } finally {
      this.#running--;
    }
  }

  async #run(rand: () => number, compactChance: number): Promise<void> {
    while (!this.#stop) {
      if (this.#held !== null) {
        this.#parked++;
        await this.#held;
        this.#parked--;
        continue;
      }
      try {
        if (rand() < compactChance) {
          // Everything issued so far, including appends still queued: they land in the old
          // file first, so the snapshot loses nothing either way.
          await this.journal.compact(Array.from({ length: this.issued }, (_, i) => record(i)));
          this.compactions++;
          continue;
        }
        const i = this.issued++;
        const r = await this.journal.append(record(i));
        if (r.seq !== i) this.errors.push(`record ${i} was acknowledged as seq ${r.seq}`);
        if (i + 1 > this.acked) this.acked = i + 1;
      } catch (e) {
        this.errors.push(`${(e as Error).name}: ${(e as Error).message}`);
        return;
      }
    }
  }

  /**
   * Parks every loop once its append in flight is acknowledged, then compacts: a cut taken
   * before {@link release} finds the snapshot just written and nothing after it, so only
   * the snapshot's own sync keeps the acknowledged records.
   */
  async holdAfterCompaction(): Promise<void> {
    this.#held = new Promise((r) => (this.#release = r));
    while (this.#parked < this.#running) await new Promise((r) => setTimeout(r, 1));
    await this.journal.compact(Array.from({ length: this.issued }, (_, i) => record(i)));
    this.compactions++;
  }

  release(): void {
    this.#held = null;
    this.#release();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    this.release();
    await Promise.all(this.#loops);
  }
}
