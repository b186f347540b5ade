/**
 * An emulated logical unit: the dispatch table, the unit attention state and the page
 * registries around a device model. It owns the rules every command shares (unknown
 * opcode, reserved bits, unit attention, aborts, handler bugs); handlers own the rest.
 */
import { ScsiStatus } from '../../src/scsi/status.js';
import { Sense, sense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';
import { opcodeName } from '../../src/scsi/opcodes.js';
import { CheckCondition } from './check.js';
import type { CommandSpec, DispatchTable, Exec, HandlerResult } from './dispatch.js';
import { LogPages } from './log-pages.js';
import { ModePages } from './mode-pages.js';
import { CommandAborted } from './timing.js';
import { TaskManagement, type CommandContext, type CommandResult, type LogicalUnit } from './types.js';
import { UnitAttentions } from './unit-attention.js';

/** INQUIRY identity and the device-type-specific parts of SPC answers. */
export interface UnitIdentity {
  /** INQUIRY T10 vendor identification, up to 8 ASCII characters. */
  readonly vendor: string;
  /** Product identification, up to 16. */
  readonly product: string;
  /** Product revision level, up to 4. */
  readonly revision: string;
  /** Unit serial number (VPD page 0x80). */
  readonly serial: string;
  /** Version descriptors of the device's command set (e.g. SSC-4, SMC-3), after SAM-5 and SPC-4. */
  readonly versionDescriptors?: readonly number[];
}

/** Hooks through which a device model shapes the shared SPC commands. */
export interface UnitHooks {
  /** Device-specific parameter byte of the mode parameter header (tape: WP, buffered mode). */
  deviceSpecificParameter?(): number;
  /** Mode parameter block descriptors (8 bytes each), tape density and block length. */
  blockDescriptors?(): Uint8Array;
  /** A MODE SELECT block descriptor; throw `CheckCondition` to refuse it (byte pointers relative to the descriptor). */
  selectBlockDescriptor?(descriptor: Uint8Array, initiator: string): void;
  /** TEST UNIT READY: the reason the unit is not ready, or undefined when ready. */
  notReady?(): SenseData | undefined;
  /** Extra VPD pages (page code -> page bytes including the 4-byte header). */
  vpdPages?(): ReadonlyMap<number, Uint8Array>;
  /** Medium type byte of the mode parameter header. */
  mediumType?(): number;
  /** Called after a LOGICAL UNIT RESET, TARGET RESET or power cycle. */
  onReset?(kind: 'lu-reset' | 'target-reset' | 'power-on'): void;
}

export interface UnitOptions<D> {
  readonly name: string;
  readonly deviceType: number;
  readonly identity: UnitIdentity;
  readonly table: DispatchTable<D>;
  readonly device: D;
  readonly hooks?: UnitHooks;
  /** Multiplier for mechanical delays (0 in tests). */
  readonly timeScale?: number;
}

/** A record of a handler that threw something other than `CheckCondition`. */
export interface EmulatorBug {
  readonly command: string;
  readonly cdb: string;
  readonly error: unknown;
}

interface Running {
  readonly initiator: string;
  readonly controller: AbortController;
}

export class EmulatedUnit<D> implements LogicalUnit {
  readonly name: string;
  readonly deviceType: number;
  readonly identity: UnitIdentity;
  readonly table: DispatchTable<D>;
  readonly device: D;
  readonly hooks: UnitHooks;
  readonly unitAttentions = new UnitAttentions();
  readonly modePages = new ModePages();
  readonly logPages = new LogPages();
  timeScale: number;
  /** Handler failures: each is an emulator bug, and the tests fail on any. */
  readonly bugs: EmulatorBug[] = [];
  /** The LUN list REPORT LUNS answers with; the target that holds the unit sets it. */
  lunList: () => readonly number[] = () => [0];
  private descriptorSense = false;
  private readonly running = new Set<Running>();
  /** Listeners told of every command, for traces and tests. */
  private readonly observers = new Set<(name: string, cdb: Uint8Array, result: CommandResult) => void>();

  constructor(o: UnitOptions<D>) {
    this.name = o.name;
    this.deviceType = o.deviceType;
    this.identity = o.identity;
    this.table = o.table;
    this.device = o.device;
    this.hooks = o.hooks ?? {};
    this.timeScale = o.timeScale ?? 0;
  }

  senseFormat(_initiator: string): 'fixed' | 'descriptor' {
    return this.descriptorSense ? 'descriptor' : 'fixed';
  }
  /** Set by the control mode page's D_SENSE bit. */
  setDescriptorSense(on: boolean): void {
    this.descriptorSense = on;
  }

  /** Establishes a unit attention for every initiator but `except`. */
  raise(code: SenseCode, except?: string): void {
    this.unitAttentions.raise(code, except);
  }

  observe(fn: (name: string, cdb: Uint8Array, result: CommandResult) => void): () => void {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  async execute(ctx: CommandContext): Promise<CommandResult> {
    const result = await this.run(ctx);
    if (this.observers.size) {
      const name = opcodeName(this.deviceType, ctx.cdb[0] ?? 0);
      for (const o of this.observers) o(name, ctx.cdb, result);
    }
    return result;
  }

  private async run(ctx: CommandContext): Promise<CommandResult> {
    const { cdb } = ctx;
    if (cdb.length === 0) return check(sense(Sense.INVALID_COMMAND_OPERATION_CODE, { fieldPointer: { inCdb: true, byte: 0 } }));
    const found = this.table.lookup(cdb);
    if (found === undefined) return check(sense(Sense.INVALID_COMMAND_OPERATION_CODE, { fieldPointer: { inCdb: true, byte: 0, bit: 7 } }));
    if (found === 'bad-service-action') return check(sense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 4 } }));
    const spec: CommandSpec<D> = found;
    const len = spec.usage.length;
    if (cdb.length < len) return check(sense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: cdb.length - 1 } }));
    for (let i = 1; i < len; i++) {
      const bad = (cdb[i] ?? 0) & ~(spec.usage[i] ?? 0) & 0xff;
      if (bad) return check(sense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: i, bit: 31 - Math.clz32(bad) } }));
    }
    if (!spec.bypassUnitAttention) {
      const ua = this.unitAttentions.take(ctx.initiator);
      if (ua) return check(ua);
    }
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort(ctx.signal.reason);
    if (ctx.signal.aborted) return { status: ScsiStatus.TASK_ABORTED };
    ctx.signal.addEventListener('abort', onOuterAbort, { once: true });
    const entry: Running = { initiator: ctx.initiator, controller };
    this.running.add(entry);
    const exec: Exec<D> = {
      unit: this,
      device: this.device,
      initiator: ctx.initiator,
      cdb: cdb.length === len ? cdb : cdb.subarray(0, len),
      dataOut: ctx.dataOut ?? new Uint8Array(0),
      dataInLength: ctx.dataInLength,
      signal: controller.signal,
    };
    try {
      const r = await spec.handler(exec);
      if (controller.signal.aborted) return { status: ScsiStatus.TASK_ABORTED };
      return toResult(r, ctx.dataInLength);
    } catch (e) {
      if (e instanceof CheckCondition) return { status: ScsiStatus.CHECK_CONDITION, sense: e.sense, ...(e.data ? { data: cut(e.data, ctx.dataInLength) } : {}) };
      if (e instanceof CommandAborted || controller.signal.aborted) return { status: ScsiStatus.TASK_ABORTED };
      this.bugs.push({ command: spec.name, cdb: Buffer.from(cdb).toString('hex'), error: e });
      return check(sense(Sense.INTERNAL_TARGET_FAILURE));
    } finally {
      ctx.signal.removeEventListener('abort', onOuterAbort);
      this.running.delete(entry);
    }
  }

  taskManagement(fn: TaskManagement, initiator: string): void {
    for (const r of [...this.running]) {
      const mine = r.initiator === initiator;
      if (fn === TaskManagement.abortTaskSet && !mine) continue;
      r.controller.abort(new CommandAborted(`aborted by ${fn}`));
    }
    if (fn === TaskManagement.clearTaskSet) this.raise(Sense.COMMANDS_CLEARED_BY_ANOTHER_INITIATOR, initiator);
    if (fn === TaskManagement.logicalUnitReset || fn === TaskManagement.targetReset) {
      this.unitAttentions.reset(fn === TaskManagement.logicalUnitReset ? Sense.BUS_DEVICE_RESET : Sense.POWER_ON_RESET);
      this.hooks.onReset?.(fn);
    }
  }

  /** Power cycle: everything in flight aborts, state resets, POWER ON OCCURRED for all. */
  powerCycle(): void {
    for (const r of [...this.running]) r.controller.abort(new CommandAborted('power cycle'));
    this.unitAttentions.reset(Sense.POWER_ON_OCCURRED);
    this.descriptorSense = false;
    this.hooks.onReset?.('power-on');
  }

  /** Commands currently executing (for tests of hangs and aborts). */
  inFlight(): number {
    return this.running.size;
  }
}

function check(s: SenseData): CommandResult {
  return { status: ScsiStatus.CHECK_CONDITION, sense: s };
}

function cut(data: Uint8Array, n: number): Uint8Array {
  return data.length > n ? data.subarray(0, n) : data;
}

function toResult(r: HandlerResult, dataInLength: number): CommandResult {
  if (r === undefined) return { status: ScsiStatus.GOOD };
  if (r instanceof Uint8Array) return { status: ScsiStatus.GOOD, data: cut(r, dataInLength) };
  const data = r.data ? cut(r.data, dataInLength) : undefined;
  if (r.sense) return { status: ScsiStatus.CHECK_CONDITION, sense: r.sense, ...(data ? { data } : {}) };
  return { status: ScsiStatus.GOOD, ...(data ? { data } : {}) };
}

/** Cuts `data` to a CDB's allocation length (the handler's part of truncation). */
export function allocation(data: Uint8Array, allocationLength: number): Uint8Array {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}
