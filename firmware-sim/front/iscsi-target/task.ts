/**
 * The commands of a session: a SCSI command's life from its PDU to its answer. Data-Out
 * is gathered (immediate, unsolicited and R2T-driven), commands run per LU in CmdSN order
 * once their data is in, and the unit's result is answered at once when the unit
 * finished the command synchronously, else when its promise settles.
 */
import { sense, Sense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { Opcode, RejectReason, RESERVED_TAG } from '../../../src/iscsi/constants.js';
import { commandCdb, decodeLun, type DataOutPdu, type ScsiCommandPdu } from '../../../src/iscsi/pdu.js';
import type { CommandContext, LogicalUnit } from '../../engine/types.js';
import { LazyAbort } from '../../engine/lazy-abort.js';
import { EMPTY, headerOf, RESOLVED } from './common.js';
import type { TargetConnection } from './connection.js';
import { respond } from './responder.js';

/**
 * One SCSI command of a session. It is also the context the unit executes (initiator, CDB,
 * Data-Out, expected Data-In length) and its abort state: the AbortSignal is made only if
 * the unit's handler waits on it.
 */
export class Task extends LazyAbort implements CommandContext {
  /** Data-Out as handed to the unit (set when the command runs). */
  dataOut: Uint8Array | undefined = undefined;
  /** Next offset the current data sequence must continue at. */
  nextOffset: number;
  unsolicitedLeft: boolean;
  r2t: { ttt: number; offset: number; length: number } | undefined = undefined;
  r2tSN = 0;
  done: Promise<void> | undefined = undefined;
  /** Its data is in and it waits only for the commands before it to the same LU. */
  ready = false;
  /** performance.now() at arrival, when an observer times commands (else 0). */
  startedAt = 0;

  constructor(
    readonly itt: number,
    readonly lun: bigint,
    readonly unit: LogicalUnit | undefined,
    readonly cmd: ScsiCommandPdu,
    readonly cdb: Uint8Array,
    readonly edtl: number,
    readonly initiator: string,
    readonly dataInLength: number,
    /** Where Data-Out lands (the immediate data itself when it is the whole transfer). */
    readonly buffer: Uint8Array | undefined,
    /** Data-Out bytes in so far. */
    public received: number,
  ) {
    super();
    this.nextOffset = received;
    this.unsolicitedLeft = cmd.write && !cmd.final;
  }
}

/** The tasks of one connection (one session: ERL 0, one connection per session). */
export class TaskSet {
  /** Tasks by ITT, from their command's arrival to their answer (or abort). */
  readonly byItt = new Map<number, Task>();
  /**
   * Per LU, the commands (in CmdSN order) from the first one still waiting for Data-Out
   * on: a command whose data is complete runs only once those before it have been handed
   * to the unit, so data that comes in late never lets a later command overtake.
   */
  private readonly waiting = new Map<LogicalUnit, Task[]>();
  /** ITTs of commands aborted before they arrived (ABORT TASK for a CmdSN still in the window). */
  readonly preAborted = new Set<number>();
  private lunCache: ReadonlyMap<number, LogicalUnit> | undefined;
  private lastLun: { field: bigint; unit: LogicalUnit | undefined } | undefined;

  constructor(private readonly c: TargetConnection) {}

  /** Commands in progress (they count against the CmdSN window). */
  get size(): number {
    return this.byItt.size;
  }

  /** Aborts every task (the connection is gone or logged out); with `forget`, drops them too. */
  abortAll(why: string, forget: boolean): void {
    for (const t of this.byItt.values()) t.abort(new Error(why));
    if (!forget) return;
    this.byItt.clear();
    this.waiting.clear();
  }

  /** A SCSI command whose turn in the CmdSN order has come. */
  onCommand(p: ScsiCommandPdu): void {
    this.c.ctx.stats.commands++;
    if (this.byItt.has(p.itt) || p.itt === RESERVED_TAG) return this.c.reject(RejectReason.TASK_IN_PROGRESS, headerOf(p));
    if (p.read && p.write) return this.c.reject(RejectReason.COMMAND_NOT_SUPPORTED, headerOf(p));
    const edtl = p.expectedDataTransferLength;
    const imm = p.data ?? EMPTY;
    const prm = this.c.params;
    if (imm.length > 0 && (!p.write || !prm.immediateData || imm.length > edtl || imm.length > prm.firstBurstLength)) return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    if (!p.final && (!p.write || prm.initialR2T)) return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    const maxTransfer = this.c.ctx.options.maxTransferLength ?? 64 * 1024 * 1024;
    if (edtl > maxTransfer) return this.c.reject(RejectReason.OUT_OF_RESOURCES, headerOf(p));
    if (this.preAborted.size && this.preAborted.delete(p.itt)) return;
    const unit = this.unitFor(p.lun);
    // Immediate data that is the whole transfer is used where it arrived (the framer's
    // buffer belongs to this PDU); otherwise Data-Out is gathered into one buffer. Bytes
    // past `received` are never handed to the unit, so that buffer needs no clearing.
    let buffer: Uint8Array | undefined;
    if (p.write) {
      if (imm.length === edtl) buffer = imm;
      else {
        buffer = this.c.ctx.pool.take(edtl);
        buffer.set(imm);
      }
    }
    const task = new Task(p.itt, p.lun, unit, p, commandCdb(p), edtl, this.c.nexus, p.read ? edtl : 0, buffer, imm.length);
    if (this.c.ctx.commandDone) task.startedAt = performance.now();
    this.byItt.set(p.itt, task);
    if (unit) {
      const q = this.waiting.get(unit);
      if (q) q.push(task);
      else if (buffer && task.received < edtl) this.waiting.set(unit, [task]);
    }
    this.advanceData(task);
  }

  /** A command whose data is in: it runs now, or once the commands before it to its LU have. */
  private dataComplete(task: Task): void {
    const unit = task.unit;
    const q = unit && this.waiting.get(unit);
    if (!q) return this.execute(task);
    task.ready = true;
    this.runWaiting(unit);
  }

  /** Runs the LU's waiting commands from the front while their data is in. */
  runWaiting(unit: LogicalUnit): void {
    const q = this.waiting.get(unit);
    if (!q) return;
    while (q.length > 0) {
      const head = q[0]!;
      if (head.aborted || this.byItt.get(head.itt) !== head) {
        q.shift();
        continue;
      }
      if (!head.ready) return;
      q.shift();
      this.execute(head);
    }
    this.waiting.delete(unit);
  }

  /** The task's Data-Out memory goes back to the pool (its unit is done with it). */
  private release(task: Task): void {
    const pool = this.c.ctx.pool;
    pool.give(task.buffer);
    pool.give(task.cmd.data);
  }

  /** Drops the cached LUN map (TMF asks the target afresh). */
  readonly forgetLuns = (): void => {
    this.lunCache = undefined;
    this.lastLun = undefined;
  };

  /** The unit a LUN field names; the target's LUN map is asked once per task of the event loop. */
  private unitFor(field: bigint): LogicalUnit | undefined {
    const last = this.lastLun;
    if (last && last.field === field) return last.unit;
    let luns = this.lunCache;
    if (!luns) {
      luns = this.lunCache = this.c.ctx.options.target.luns();
      void RESOLVED.then(this.forgetLuns);
    }
    const n = decodeLun(field);
    const unit = n === undefined ? undefined : luns.get(n);
    this.lastLun = { field, unit };
    return unit;
  }

  /** Asks for more Data-Out or runs the command once its data is in. */
  private advanceData(task: Task): void {
    if (!task.buffer || task.received >= task.edtl) return this.dataComplete(task);
    if (task.unsolicitedLeft || task.r2t) return;
    if (!task.unit) {
      // No such LUN: the status goes out at once, without asking for the data.
      return this.execute(task);
    }
    const offset = task.received;
    const length = Math.min(this.c.params.maxBurstLength, task.edtl - offset);
    const ttt = this.c.allocTtt();
    task.r2t = { ttt, offset, length };
    task.nextOffset = offset;
    this.c.send({ opcode: Opcode.R2T, lun: task.lun, itt: task.itt, ttt, ...this.c.sn(false), r2tSN: task.r2tSN++, bufferOffset: offset, desiredDataTransferLength: length });
  }

  onDataOut(p: DataOutPdu): void {
    const task = this.byItt.get(p.itt);
    // Data for a task already aborted or finished is late, not wrong.
    if (!task || task.aborted || task.done) return;
    const data = p.data ?? EMPTY;
    const dataOut = task.buffer;
    if (!dataOut) return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    let limit: number;
    if (p.ttt === RESERVED_TAG) {
      if (!task.unsolicitedLeft) return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
      limit = Math.min(this.c.params.firstBurstLength, task.edtl);
    } else {
      if (!task.r2t || task.r2t.ttt !== p.ttt) return this.c.reject(RejectReason.INVALID_PDU_FIELD, headerOf(p));
      limit = task.r2t.offset + task.r2t.length;
    }
    if (p.bufferOffset !== task.nextOffset || p.bufferOffset + data.length > limit) return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    dataOut.set(data, p.bufferOffset);
    task.received += data.length;
    task.nextOffset += data.length;
    if (!p.final) return;
    if (p.ttt === RESERVED_TAG) task.unsolicitedLeft = false;
    else task.r2t = undefined;
    this.advanceData(task);
  }

  /** Hands the task to its unit; the answer goes out at once if the unit finished it so. */
  private execute(task: Task): void {
    const unit = task.unit;
    if (!unit) {
      task.done = RESOLVED;
      respond(this.c, task, { status: ScsiStatus.CHECK_CONDITION, sense: sense(Sense.LOGICAL_UNIT_NOT_SUPPORTED) }, undefined);
      return this.release(task);
    }
    const buffer = task.buffer;
    if (buffer) task.dataOut = task.received === buffer.length ? buffer : buffer.subarray(0, task.received);
    const r = unit.execute(task);
    if (!(r instanceof Promise)) {
      // Finished at once (TEST UNIT READY, REQUEST SENSE, a buffered WRITE...): answered
      // here, in CmdSN order with the PDUs around it. The socket gathers every answer of
      // this read into one write (coalesce mode).
      task.done = RESOLVED;
      if (!task.aborted && this.c.phase !== 'gone') respond(this.c, task, r, unit);
      return this.release(task);
    }
    task.done = r.then((x) => {
      this.release(task);
      if (task.aborted || this.c.phase === 'gone') return;
      respond(this.c, task, x, unit);
    });
  }
}
