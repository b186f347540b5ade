/**
 * An in-memory key journal for simulation and tests: appended records sit in a volatile
 * tail until `sync()` makes them durable; `crash()` loses the tail, like a VTC losing
 * power before fdatasync. The durable part survives a simulated crash and restart.
 */
import { EngineStoppedError } from './errors.js';
import type { Storage } from './ports.js';

export class MemoryJournal implements Storage {
  readonly #durable: Uint8Array[] = [];
  #tail: { record: Uint8Array; resolve: () => void; reject: (e: Error) => void }[] = [];

  append(record: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.#tail.push({ record, resolve, reject }));
  }
  /** Stages a record without a promise (the simulation notifies the engine itself). */
  stage(record: Uint8Array): void {
    this.#tail.push({ record, resolve: () => undefined, reject: () => undefined });
  }
  /** Makes every staged record durable, in order. */
  sync(): void {
    const t = this.#tail;
    this.#tail = [];
    for (const r of t) {
      this.#durable.push(r.record);
      r.resolve();
    }
  }
  /** Loses the non-synced tail; its appends reject. */
  crash(): void {
    const t = this.#tail;
    this.#tail = [];
    for (const r of t) r.reject(new EngineStoppedError());
  }
  /** The disk is replaced (a new VTC machine): nothing durable remains. Call while crashed. */
  wipe(): void {
    this.#tail = [];
    this.#durable.length = 0;
  }
  readAll(): Promise<Uint8Array[]> {
    return Promise.resolve(this.#durable.slice());
  }
  durable(): readonly Uint8Array[] {
    return this.#durable;
  }
}
