/**
 * The emulator's internal contract. A {@link LogicalUnit} is one emulated device (tape
 * drive or medium changer); fronts (in-process port, iSCSI target, USB BOT device, serial
 * console) deliver commands to it and carry results back. Nothing here knows a transport.
 */
import type { SenseData } from '../../src/scsi/sense.js';

/** One command as delivered by a front. */
export interface CommandContext {
  /**
   * Identity of the I_T nexus (initiator port) issuing the command. Unit attentions,
   * reservations and REQUEST SENSE state are kept per initiator.
   */
  readonly initiator: string;
  readonly cdb: Uint8Array;
  /** Data-Out buffer (already fully received by the front). */
  readonly dataOut?: Uint8Array;
  /** Bytes the initiator will accept in Data-In (its expected transfer length). */
  readonly dataInLength: number;
  /**
   * Aborted by task management (ABORT TASK, LU RESET, TARGET RESET), by a transport
   * timeout, or when the front closes. A handler that waits (timing model, drive hang
   * fault) must stop waiting when it aborts. A context that is itself a `LazyAbort`
   * (lazy-abort.ts) is watched through it, so its signal is made only if a handler asks.
   */
  readonly signal: AbortSignal;
}

/** What a command produced. Data longer than `dataInLength` is cut by the engine. */
export interface CommandResult {
  readonly status: number;
  readonly data?: Uint8Array;
  readonly sense?: SenseData;
}

/** Task management functions a front may deliver (SAM-5 7). */
export const TaskManagement = {
  abortTaskSet: 'abort-task-set',
  clearTaskSet: 'clear-task-set',
  logicalUnitReset: 'lu-reset',
  targetReset: 'target-reset',
} as const;
export type TaskManagement = (typeof TaskManagement)[keyof typeof TaskManagement];

/** An emulated logical unit. */
export interface LogicalUnit {
  /** Peripheral device type (0x01 tape, 0x08 changer). */
  readonly deviceType: number;
  /** Stable name for logs and traces, e.g. `lib0/drive1`. */
  readonly name: string;
  /**
   * Executes one command. The result comes back as it is when the command completed
   * synchronously (the handler did not wait: no timing delay, nothing queued before it on
   * an ordered unit), so a front can answer in the same turn that delivered the command;
   * otherwise it is a promise. A caller that does not care awaits either. Never rejects
   * nor throws: handler errors become CHECK CONDITION with HARDWARE ERROR / INTERNAL
   * TARGET FAILURE (and are recorded as emulator bugs); an aborted command answers TASK
   * ABORTED status.
   */
  execute(ctx: CommandContext): CommandResult | Promise<CommandResult>;
  /** Applies a task management function; pending commands of the LU are aborted. */
  taskManagement(fn: TaskManagement, initiator: string): void;
  /** Sense format the initiator asked for (descriptor or fixed): per-initiator, via D_SENSE. */
  senseFormat(initiator: string): 'fixed' | 'descriptor';
}

/** A target as fronts see it: its LUNs in order (LUN 0 first). */
export interface EmulatedTarget {
  readonly name: string;
  luns(): ReadonlyMap<number, LogicalUnit>;
}
