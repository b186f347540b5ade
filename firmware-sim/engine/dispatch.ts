/**
 * The opcode dispatch table. Commands are data: REPORT SUPPORTED OPERATION CODES, trace
 * names, the reserved-bit check and coverage reports all read the same entries.
 */
import type { SenseData } from '../../src/scsi/sense.js';
import type { EmulatedUnit } from './unit.js';

/** Everything a handler gets for one command. */
export interface Exec<D> {
  readonly unit: EmulatedUnit<D>;
  /** The unit's device model (tape drive state, changer state, ...). */
  readonly device: D;
  readonly initiator: string;
  /** The CDB, exactly `spec.usage.length` bytes (padding from the front is cut off). */
  readonly cdb: Uint8Array;
  /** Data-Out buffer; empty when the command has none. */
  readonly dataOut: Uint8Array;
  /** Bytes the initiator accepts in Data-In. */
  readonly dataInLength: number;
  /** Aborted by task management, a transport timeout or the front closing. */
  readonly signal: AbortSignal;
}

/**
 * What a handler returns: Data-In bytes, nothing (GOOD with no data), or an explicit
 * outcome when GOOD is not the answer but data goes with it (a short READ that met a
 * filemark answers CHECK CONDITION with the bytes it read). Handlers raise plain CHECK
 * CONDITION by throwing `CheckCondition`.
 */
export type HandlerResult = Uint8Array | undefined | void | { readonly data?: Uint8Array; readonly sense?: SenseData };

export type Handler<D> = (x: Exec<D>) => HandlerResult | Promise<HandlerResult>;

/** One command of a unit's command set. */
export interface CommandSpec<D> {
  readonly opcode: number;
  /** Service action (CDB byte 1, bits 4..0) for commands that have one. */
  readonly serviceAction?: number;
  /** Trace name, e.g. `WRITE(6)`. */
  readonly name: string;
  /**
   * CDB usage data (SPC-4 6.35.3): one byte per CDB byte, the bits the command defines.
   * Its length is the CDB length. A bit set in the CDB but clear here is reserved, and the
   * engine answers INVALID FIELD IN CDB pointing at it before the handler runs.
   */
  readonly usage: readonly number[];
  readonly handler: Handler<D>;
  /** INQUIRY, REPORT LUNS and REQUEST SENSE run although a unit attention is pending. */
  readonly bypassUnitAttention?: boolean;
  /**
   * On a unit that carries out its commands in order (a tape drive), this command does not
   * wait for those before it: INQUIRY, REPORT LUNS, REQUEST SENSE, TEST UNIT READY.
   */
  readonly overtakes?: boolean;
  /** Seconds, for the timeouts descriptor of REPORT SUPPORTED OPERATION CODES. */
  readonly nominalTimeout?: number;
  readonly recommendedTimeout?: number;
}

function key(opcode: number, serviceAction?: number): number {
  return serviceAction === undefined ? opcode : 0x10000 | (opcode << 8) | serviceAction;
}

/** Looks commands up by opcode (and service action). */
export class DispatchTable<D> {
  private readonly byKey = new Map<number, CommandSpec<D>>();
  /** Opcodes whose commands are told apart by service action. */
  private readonly withServiceActions = new Set<number>();

  constructor(specs: Iterable<CommandSpec<D>> = []) {
    for (const s of specs) this.add(s);
  }

  add(spec: CommandSpec<D>): this {
    if (spec.usage.length < 6 || spec.usage[0] !== 0xff) throw new Error(`${spec.name}: usage data must start with 0xff and cover at least 6 bytes`);
    const k = key(spec.opcode, spec.serviceAction);
    if (this.byKey.has(k)) throw new Error(`${spec.name}: opcode 0x${spec.opcode.toString(16)} is already in the table`);
    if (spec.serviceAction !== undefined) this.withServiceActions.add(spec.opcode);
    this.byKey.set(k, spec);
    return this;
  }

  /**
   * The command for a CDB: `undefined` opcode unknown, `'bad-service-action'` when the
   * opcode is known only with other service actions.
   */
  lookup(cdb: Uint8Array): CommandSpec<D> | undefined | 'bad-service-action' {
    const opcode = cdb[0] ?? 0;
    if (this.withServiceActions.has(opcode)) {
      return this.byKey.get(key(opcode, (cdb[1] ?? 0) & 0x1f)) ?? 'bad-service-action';
    }
    return this.byKey.get(key(opcode));
  }

  /** Exact entry for an opcode and optional service action. */
  get(opcode: number, serviceAction?: number): CommandSpec<D> | undefined {
    return this.byKey.get(key(opcode, serviceAction));
  }

  hasServiceActions(opcode: number): boolean {
    return this.withServiceActions.has(opcode);
  }

  /** Every command, ordered by opcode then service action. */
  all(): CommandSpec<D>[] {
    return [...this.byKey.values()].sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? -1) - (b.serviceAction ?? -1));
  }
}

/** Usage data for a CDB of `length` bytes whose every bit past the opcode is defined by `bytes`. */
export function usage(length: 6 | 10 | 12 | 16, bytes: Record<number, number> = {}): number[] {
  const u = new Array<number>(length).fill(0);
  u[0] = 0xff;
  for (const [i, v] of Object.entries(bytes)) u[Number(i)] = v;
  return u;
}
