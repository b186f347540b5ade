/**
 * What the protocol core needs from the outside world, injected so the core stays pure:
 * a clock, the network to other VTCs, durable storage for keys (the key journal), the
 * VTS it controls, and randomness. A VTC agent wires real implementations; the
 * simulation wires simulated ones.
 */
import type { VtsOp, VtsResult } from './engine.js';
import type { VtsName } from './types.js';

/**
 * Time and timers in milliseconds. `now` never goes backwards. A timer's callback runs
 * at or after its due time; `cancel` after it ran is a no-op. Timers never throw into the
 * caller; an exception inside a callback is the callback's bug.
 */
export interface Clock {
  now(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
}
export type TimerHandle = { readonly id: number };

/**
 * Durable storage of journal records (production: the key journal of src/hotpath).
 * `append` resolves only once the record is on stable storage; records resolve in
 * append order. It has no timeout and cannot be cancelled: an unsettled append may or
 * may not be durable. A rejected append (disk full, I/O error, closed journal) means the
 * VTC must stop: the agent stops the engine and surfaces the error, never retries blindly.
 */
export interface Storage {
  append(record: Uint8Array): Promise<void>;
  /** Every durable record, oldest first; read once at start to restore the engine. */
  readAll(): Promise<Uint8Array[]>;
}

/**
 * One VTS as a VTC reaches it (production: the VTS unit over its link). Each operation
 * resolves with `{ok: true, view}` or `{ok: false, error}` for a VTS that refused or
 * could not be reached; it should not reject. The engine puts its own timeout on every
 * operation (heartbeat timeout for `status`, vtsOpTimeout for the rest) and ignores a
 * late answer; operations are idempotent per seq, so a retried one is harmless.
 * Cancellation is not supported: a VTS operation that started runs to its end.
 */
export interface VtsPort {
  readonly name: VtsName;
  execute(op: VtsOp): Promise<VtsResult>;
}
