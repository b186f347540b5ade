/**
 * The iSCSI initiator: one session with one connection to one target, error recovery
 * level 0. Commands are pipelined up to a queue depth and the target's CmdSN window;
 * Data-In is reassembled, R2Ts are answered, immediate and unsolicited data are sent as
 * negotiated. A lost connection fails every command in flight with ECONNRESET and is
 * re-established (session reinstatement, same ISID) on the next command; no command is
 * ever sent twice.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { LogoutReason, Opcode, RESERVED_TAG, TmfFunction, TmfResponse } from './constants.js';
import type { ChapCredentials } from './chap.js';
import { IscsiProtocolError } from './errors.js';
import { InitiatorLogin, SessionType } from './login.js';
import { DEFAULT_PARAMS, localParams, type LocalParams, type SessionParams } from './negotiate.js';
import { encodeLun, extendedCdbAhs, type Pdu, type ScsiCommandPdu } from './pdu.js';
import { PduSocket } from './pdu-socket.js';
import { TransportError } from '../transport/scsi-port.js';
import { encodeText, parseText } from './text.js';

/** Serial number arithmetic (RFC 1982) on 32-bit sequence numbers: a <= b. */
export function snLte(a: number, b: number): boolean {
  return ((b - a) >>> 0) < 0x80000000;
}
const snGt = (a: number, b: number): boolean => !snLte(a, b);

export interface IscsiSessionOptions {
  readonly host: string;
  readonly port: number;
  readonly initiatorName: string;
  /** Target IQN; required for a normal session. */
  readonly targetName?: string;
  readonly sessionType?: SessionType;
  /** 48-bit ISID; random (type 0x80, random qualifier) by default. */
  readonly isid?: bigint;
  readonly chap?: ChapCredentials;
  /** Make the target prove itself too. */
  readonly mutualChap?: ChapCredentials;
  /** Ask for CRC32C header digests (and accept nothing else). Default false. */
  readonly headerDigest?: boolean;
  readonly dataDigest?: boolean;
  /** Our MaxRecvDataSegmentLength. Default 256 KiB. */
  readonly maxRecvDataSegmentLength?: number;
  /** Proposed MaxBurstLength. Default 256 KiB. */
  readonly maxBurstLength?: number;
  /**
   * Proposed FirstBurstLength. Default 256 KiB: with ImmediateData=Yes a write of up to
   * that many bytes goes out in its command PDU when the target accepts segments that
   * large (the result is the smaller of both sides' values).
   */
  readonly firstBurstLength?: number;
  readonly immediateData?: boolean;
  readonly initialR2T?: boolean;
  /** Commands in flight at once. Default 16. */
  readonly queueDepth?: number;
  /** Per-command timeout when a request names none. Default 30 s. */
  readonly defaultTimeoutMs?: number;
  /** TCP connect plus login. Default 10 s. */
  readonly loginTimeoutMs?: number;
  /** How long an ABORT TASK may take before the connection is dropped. Default 5 s. */
  readonly tmfTimeoutMs?: number;
  /** Ping an idle connection this often (NOP-Out); 0 disables. Default 0. */
  readonly nopIntervalMs?: number;
  /** A ping unanswered this long drops the connection. Default 5 s. */
  readonly nopTimeoutMs?: number;
  /** Re-login after a lost connection when the next command comes. Default true. */
  readonly reconnect?: boolean;
}

/** One command for {@link IscsiSession.execute}. */
export interface SessionCommand {
  readonly lun: number;
  readonly cdb: Uint8Array;
  readonly direction: 'none' | 'in' | 'out';
  readonly dataOut?: Uint8Array;
  readonly dataInLength?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What a command came back with. */
export interface SessionResult {
  readonly status: number;
  readonly data: Uint8Array;
  /** Raw sense bytes from the SCSI Response data segment (autosense). */
  readonly sense: Uint8Array;
  readonly residual: number;
}

interface Task {
  readonly itt: number;
  readonly cmd: SessionCommand;
  readonly lun: bigint;
  cmdSN: number;
  /** Expected Data-In length. */
  readonly dataInLength: number;
  /** Data-In assembled from several PDUs (made when a second PDU or a partial one comes). */
  dataIn: Buffer | undefined;
  /** A single Data-In PDU that carried the whole transfer from offset 0: kept as it came. */
  whole: Uint8Array | undefined;
  received: number;
  sent: boolean;
  /** Set once the command is being aborted: its late PDUs are ignored. */
  aborting: boolean;
  /** Connection the task was sent on: a task never outlives it. */
  conn?: PduSocket;
  resolve(r: SessionResult): void;
  reject(e: Error): void;
}

interface Waiter {
  readonly itt: number;
  resolve(pdu: Pdu): void;
  reject(e: Error): void;
}

export const SessionState = { idle: 'idle', connecting: 'connecting', up: 'up', down: 'down', closed: 'closed' } as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

let defaultIsidCounter = 0;
function randomIsid(): bigint {
  // Type 0x80 ("random"), 24-bit random qualifier, 16-bit qualifier.
  const r = randomBytes(3);
  return (0x80n << 40n) | (BigInt(r.readUIntBE(0, 3)) << 16n) | BigInt(++defaultIsidCounter & 0xffff);
}

/**
 * A session to one target.
 *
 * - Timeout: a command past its `timeoutMs` is aborted with ABORT TASK; once the target
 *   answers (or the task-management timeout drops the connection) it rejects with
 *   `TransportError` `ETIMEDOUT`.
 * - Cancel: the same with `ECANCELED` when `signal` aborts.
 * - Error: a lost connection rejects every command in flight with `ECONNRESET` (never
 *   retried); a PDU that breaks the protocol rejects its command with `EPROTO`; after
 *   `close()` every call rejects with `ECLOSED`.
 */
export class IscsiSession {
  readonly isid: bigint;
  private readonly local: LocalParams;
  private conn: PduSocket | undefined;
  private connecting: Promise<void> | undefined;
  private _state: SessionState = SessionState.idle;
  private _params: SessionParams = DEFAULT_PARAMS;
  private tsih = 0;
  private cmdSN = 1;
  private expCmdSN = 1;
  private maxCmdSN = 1;
  private expStatSN = 0;
  private nextItt = 1;
  private readonly tasks = new Map<number, Task>();
  private readonly waiters = new Map<number, Waiter>();
  /** Commands not yet sent, oldest first. */
  private readonly queue: Task[] = [];
  private outstanding = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastRx = 0;
  /** Counts connections made, for tests and logs. */
  connections = 0;

  constructor(readonly options: IscsiSessionOptions) {
    this.isid = options.isid ?? randomIsid();
    this.local = localParams({
      maxRecvDataSegmentLength: options.maxRecvDataSegmentLength ?? 262144,
      maxBurstLength: options.maxBurstLength ?? 262144,
      firstBurstLength: options.firstBurstLength ?? 262144,
      immediateData: options.immediateData ?? true,
      initialR2T: options.initialR2T ?? false,
      headerDigests: options.headerDigest ? ['CRC32C'] : ['None'],
      dataDigests: options.dataDigest ? ['CRC32C'] : ['None'],
      maxConnections: 1,
    });
  }

  /** Connects and logs in. Rejects with `LoginError` or a `TransportError` from the socket. */
  static async open(options: IscsiSessionOptions): Promise<IscsiSession> {
    const s = new IscsiSession(options);
    await s.connect();
    return s;
  }

  get state(): SessionState {
    return this._state;
  }
  /** Parameters negotiated at the last login. */
  get params(): SessionParams {
    return this._params;
  }
  get address(): string {
    return `iscsi://${this.options.host}:${this.options.port}/${this.options.targetName ?? ''}`;
  }

  /** Logs in (again). Resolves when the connection is in full feature phase. */
  connect(): Promise<void> {
    if (this._state === SessionState.closed) return Promise.reject(new TransportError('ECLOSED', `${this.address} is closed`));
    if (this._state === SessionState.up) return Promise.resolve();
    this.connecting ??= this.login().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async login(): Promise<void> {
    this._state = SessionState.connecting;
    const o = this.options;
    const timeoutMs = o.loginTimeoutMs ?? 10000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: o.host, port: o.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new TransportError('ETIMEDOUT', `${this.address}: connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(t);
        this._state = SessionState.down;
        reject(new TransportError(err.code ?? 'ECONNREFUSED', `${this.address}: ${err.message}`, { cause: err }));
      });
    });
    const loginItt = this.allocItt();
    // ERL 0 with a fresh TSIH: a previous incarnation of this ISID is reinstated (closed) by the target.
    const machine = new InitiatorLogin({
      initiatorName: o.initiatorName,
      ...(o.targetName !== undefined ? { targetName: o.targetName } : {}),
      sessionType: o.sessionType ?? SessionType.normal,
      ...(o.chap ? { chap: o.chap } : {}),
      ...(o.mutualChap ? { mutualChap: o.mutualChap } : {}),
      local: this.local,
      isid: this.isid,
      tsih: 0,
      cid: 0,
      itt: loginItt,
      cmdSN: this.cmdSN,
    });
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    const done = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    let inLogin = true;
    const conn: PduSocket = new PduSocket(socket, {
      pdu: (pdu) => {
        this.lastRx = Date.now();
        if (!inLogin) return this.onPdu(conn, pdu);
        if (pdu.opcode !== Opcode.LOGIN_RESPONSE) {
          settle?.reject(new IscsiProtocolError(`target sent ${pdu.opcode} during login`));
          conn.destroy();
          return;
        }
        try {
          const step = machine.next(pdu);
          if ('request' in step) {
            conn.send(step.request);
            return;
          }
          inLogin = false;
          const d = step.done;
          this._params = d.params;
          this.tsih = d.tsih;
          this.expStatSN = (d.statSN + 1) >>> 0;
          this.expCmdSN = d.expCmdSN;
          this.maxCmdSN = d.maxCmdSN;
          this.cmdSN = d.expCmdSN;
          conn.txDigests = { header: d.params.headerDigest, data: d.params.dataDigest };
          conn.rxDigests = conn.txDigests;
          conn.maxRecv = this.local.maxRecvDataSegmentLength;
          settle?.resolve();
        } catch (e) {
          settle?.reject(e as Error);
          conn.destroy();
        }
      },
      malformed: (err) => {
        if (inLogin) settle?.reject(err);
        conn.destroy(err);
      },
      framing: (e) => {
        const err = new IscsiProtocolError(`${this.address}: ${e.kind} error from the target`);
        if (inLogin) settle?.reject(err);
        conn.destroy(err);
      },
      closed: (err) => {
        if (inLogin) settle?.reject(new TransportError('ECONNRESET', `${this.address}: connection closed during login`, { cause: err }));
        this.onClosed(conn, err);
      },
    }, { coalesce: true });
    this.conn = conn;
    conn.maxRecv = 8192;
    const timer = setTimeout(() => {
      settle?.reject(new TransportError('ETIMEDOUT', `${this.address}: login timed out after ${timeoutMs} ms`));
      conn.destroy();
    }, timeoutMs);
    conn.send(machine.first());
    try {
      await done;
    } catch (e) {
      if ((this._state as SessionState) !== SessionState.closed) this._state = SessionState.down;
      conn.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if ((this._state as SessionState) === SessionState.closed) {
      conn.destroy();
      throw new TransportError('ECLOSED', `${this.address} closed during login`);
    }
    this.connections++;
    this._state = SessionState.up;
    this.lastRx = Date.now();
    this.startPings();
    this.pump();
  }

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = (this.nextItt + 1) >>> 0;
      if (this.nextItt === RESERVED_TAG) this.nextItt = 1;
      if (!this.tasks.has(itt) && !this.waiters.has(itt)) return itt;
    }
  }

  /** Runs one command. See the class doc for timeout, cancel and error rules. */
  execute(cmd: SessionCommand): Promise<SessionResult> {
    if (this._state === SessionState.closed) return Promise.reject(new TransportError('ECLOSED', `${this.address} is closed`));
    const timeoutMs = cmd.timeoutMs ?? this.options.defaultTimeoutMs ?? 30000;
    return new Promise<SessionResult>((resolve, reject) => {
      const clock: { timer?: NodeJS.Timeout } = {};
      const finish = (): void => {
        clearTimeout(clock.timer);
        cmd.signal?.removeEventListener('abort', onCancel);
      };
      const task: Task = {
        itt: 0,
        cmd,
        lun: encodeLun(cmd.lun),
        cmdSN: 0,
        dataInLength: cmd.direction === 'in' ? (cmd.dataInLength ?? 0) : 0,
        dataIn: undefined,
        whole: undefined,
        received: 0,
        sent: false,
        aborting: false,
        resolve: (r) => {
          finish();
          resolve(r);
        },
        reject: (e) => {
          finish();
          reject(e);
        },
      };
      const giveUp = (code: 'ETIMEDOUT' | 'ECANCELED'): void => {
        const msg = code === 'ETIMEDOUT' ? `${this.address}: command timed out after ${timeoutMs} ms` : `${this.address}: command cancelled`;
        if (!task.sent) {
          const i = this.queue.indexOf(task);
          if (i >= 0) this.queue.splice(i, 1);
          task.reject(new TransportError(code, msg));
          return;
        }
        void this.abortTask(task, new TransportError(code, msg));
      };
      const onCancel = (): void => giveUp('ECANCELED');
      if (cmd.signal?.aborted) {
        reject(new TransportError('ECANCELED', `${this.address}: command cancelled`));
        return;
      }
      cmd.signal?.addEventListener('abort', onCancel, { once: true });
      clock.timer = setTimeout(() => giveUp('ETIMEDOUT'), timeoutMs);
      if (this._state !== SessionState.up && this.options.reconnect === false && this._state === SessionState.down) {
        task.reject(new TransportError('ECONNRESET', `${this.address}: not connected`));
        return;
      }
      this.queue.push(task);
      if (this._state !== SessionState.up) this.reconnect();
      this.pump();
    });
  }

  private reconnect(): void {
    this.connect().catch((e: unknown) => {
      // Nothing was sent: every queued command fails with the reason.
      const err = e instanceof TransportError ? e : new TransportError('ECONNRESET', `${this.address}: login failed: ${(e as Error).message}`, { cause: e });
      for (const t of this.queue.splice(0)) t.reject(err);
    });
  }

  private canSend(): boolean {
    const depth = this.options.queueDepth ?? 16;
    return this._state === SessionState.up && this.outstanding < depth && snLte(this.cmdSN, this.maxCmdSN);
  }

  private pump(): void {
    while (this.queue.length && this.canSend()) {
      const t = this.queue.shift();
      if (t) this.send(t);
    }
  }

  private send(task: Task): void {
    const conn = this.conn;
    if (!conn || conn.closed) {
      task.reject(new TransportError('ECONNRESET', `${this.address}: connection lost before sending`));
      return;
    }
    const p = this._params;
    const cmd = task.cmd;
    const itt = this.allocItt();
    (task as { itt: number }).itt = itt;
    task.cmdSN = this.cmdSN;
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    task.sent = true;
    task.conn = conn;
    this.outstanding++;
    this.tasks.set(itt, task);
    const out = cmd.direction === 'out' ? (cmd.dataOut ?? new Uint8Array(0)) : new Uint8Array(0);
    const edtl = cmd.direction === 'in' ? (cmd.dataInLength ?? 0) : out.length;
    const firstBurst = Math.min(p.firstBurstLength, edtl);
    const immediate = p.immediateData ? Math.min(firstBurst, p.targetMaxRecvDataSegmentLength, out.length) : 0;
    const unsolicited = !p.initialR2T && out.length > immediate ? firstBurst - immediate : 0;
    const bhsCdb = new Uint8Array(16);
    bhsCdb.set(cmd.cdb.subarray(0, 16));
    const pdu: ScsiCommandPdu = {
      opcode: Opcode.SCSI_COMMAND,
      immediate: false,
      final: unsolicited === 0,
      read: cmd.direction === 'in',
      write: cmd.direction === 'out' && out.length > 0,
      attr: 1,
      lun: task.lun,
      itt,
      expectedDataTransferLength: edtl,
      cmdSN: task.cmdSN,
      expStatSN: this.expStatSN,
      cdb: bhsCdb,
      ahs: extendedCdbAhs(cmd.cdb),
      data: out.subarray(0, immediate),
    };
    conn.send(pdu);
    if (unsolicited > 0) this.sendData(conn, task, immediate, unsolicited, RESERVED_TAG);
  }

  private sendData(conn: PduSocket, task: Task, offset: number, length: number, ttt: number): void {
    const out = task.cmd.dataOut ?? new Uint8Array(0);
    const seg = this._params.targetMaxRecvDataSegmentLength;
    let dataSN = 0;
    for (let at = offset; at < offset + length; at += seg) {
      const n = Math.min(seg, offset + length - at);
      conn.send({
        opcode: Opcode.DATA_OUT,
        final: at + n >= offset + length,
        lun: task.lun,
        itt: task.itt,
        ttt,
        expStatSN: this.expStatSN,
        dataSN: dataSN++,
        bufferOffset: at,
        data: out.subarray(at, at + n),
      });
    }
  }

  private window(p: { statSN?: number; expCmdSN: number; maxCmdSN: number }, statusBearing: boolean): void {
    if (statusBearing && p.statSN !== undefined && snLte(this.expStatSN, p.statSN)) this.expStatSN = (p.statSN + 1) >>> 0;
    // RFC 7143 4.2.2.1: ignore a MaxCmdSN below ExpCmdSN - 1; otherwise only move forward.
    if (snLte((p.expCmdSN - 1) >>> 0, p.maxCmdSN)) {
      if (snGt(p.expCmdSN, this.expCmdSN)) this.expCmdSN = p.expCmdSN;
      if (snGt(p.maxCmdSN, this.maxCmdSN)) this.maxCmdSN = p.maxCmdSN;
    }
  }

  private onPdu(conn: PduSocket, pdu: Pdu): void {
    if (conn !== this.conn) return;
    switch (pdu.opcode) {
      case Opcode.DATA_IN: {
        this.window(pdu, pdu.statusPresent);
        const task = this.tasks.get(pdu.itt);
        if (!task || task.aborting) break;
        const d = pdu.data ?? new Uint8Array(0);
        if (pdu.bufferOffset + d.length > task.dataInLength) {
          this.failTask(task, new TransportError('EPROTO', `${this.address}: Data-In beyond the expected transfer length`));
          break;
        }
        if (pdu.bufferOffset === 0 && d.length === task.dataInLength && task.received === 0 && d.length > 0) {
          // The whole transfer in one PDU: its data segment (a buffer of its own, from the
          // framer) is the result; no second copy.
          task.whole = d;
        } else {
          let dataIn = task.dataIn;
          if (!dataIn) {
            dataIn = task.dataIn = Buffer.alloc(task.dataInLength);
            if (task.whole) dataIn.set(task.whole);
            task.whole = undefined;
          }
          dataIn.set(d, pdu.bufferOffset);
        }
        task.received = Math.max(task.received, pdu.bufferOffset + d.length);
        if (pdu.statusPresent) this.complete(task, pdu.status, new Uint8Array(0));
        break;
      }
      case Opcode.SCSI_RESPONSE: {
        this.window(pdu, true);
        const task = this.tasks.get(pdu.itt);
        if (!task || task.aborting) break;
        if (pdu.response !== 0) {
          this.failTask(task, new TransportError('EHOSTSTATUS', `${this.address}: target failure (iSCSI response 0x${pdu.response.toString(16)})`));
          break;
        }
        const d = pdu.data ?? new Uint8Array(0);
        const senseLength = d.length >= 2 ? ((d[0] ?? 0) << 8) | (d[1] ?? 0) : 0;
        this.complete(task, pdu.status, Uint8Array.from(d.subarray(2, 2 + senseLength)));
        break;
      }
      case Opcode.R2T: {
        this.window(pdu, false);
        const task = this.tasks.get(pdu.itt);
        if (!task || task.aborting) break;
        const out = task.cmd.dataOut ?? new Uint8Array(0);
        if (pdu.bufferOffset + pdu.desiredDataTransferLength > out.length || pdu.desiredDataTransferLength > this._params.maxBurstLength) {
          this.failTask(task, new TransportError('EPROTO', `${this.address}: R2T asks for bytes outside the buffer or the burst`));
          break;
        }
        this.sendData(conn, task, pdu.bufferOffset, pdu.desiredDataTransferLength, pdu.ttt);
        break;
      }
      case Opcode.NOP_IN: {
        this.window(pdu, pdu.itt !== RESERVED_TAG);
        if (pdu.ttt !== RESERVED_TAG) {
          conn.send({ opcode: Opcode.NOP_OUT, immediate: true, lun: pdu.lun, itt: RESERVED_TAG, ttt: pdu.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN });
        }
        this.resolveWaiter(pdu.itt, pdu);
        break;
      }
      case Opcode.TASK_MGMT_RESPONSE:
      case Opcode.LOGOUT_RESPONSE:
      case Opcode.TEXT_RESPONSE:
        this.window(pdu, true);
        this.resolveWaiter(pdu.itt, pdu);
        break;
      case Opcode.REJECT: {
        this.window(pdu, true);
        const header = pdu.data ?? new Uint8Array(0);
        const itt = header.length >= 20 ? Buffer.from(header).readUInt32BE(16) : RESERVED_TAG;
        const err = new TransportError('EPROTO', `${this.address}: target rejected a PDU (reason 0x${pdu.reason.toString(16)})`);
        const task = this.tasks.get(itt);
        if (task && !task.aborting) this.failTask(task, err);
        const w = this.waiters.get(itt);
        if (w) {
          this.waiters.delete(itt);
          w.reject(err);
        }
        break;
      }
      case Opcode.ASYNC_MESSAGE:
        this.window(pdu, true);
        // Event 1: the target wants us gone; 2-3: it is going to drop us anyway.
        if (pdu.asyncEvent === 1 || pdu.asyncEvent === 2 || pdu.asyncEvent === 3) conn.destroy(new TransportError('ECONNRESET', `${this.address}: target asked to log out`));
        break;
      default:
        conn.destroy(new IscsiProtocolError(`${this.address}: unexpected opcode 0x${pdu.opcode.toString(16)} from the target`));
    }
    this.pump();
  }

  private complete(task: Task, status: number, sense: Uint8Array): void {
    this.release(task);
    const whole = task.whole;
    const data = whole ? new Uint8Array(whole.buffer, whole.byteOffset, whole.length) : task.dataIn ? Uint8Array.from(task.dataIn.subarray(0, task.received)) : new Uint8Array(0);
    task.resolve({ status, data, sense, residual: Math.max(0, task.dataInLength - data.length) });
  }

  private failTask(task: Task, err: Error): void {
    this.release(task);
    task.reject(err);
  }

  private release(task: Task): void {
    if (this.tasks.get(task.itt) === task) {
      this.tasks.delete(task.itt);
      this.outstanding--;
    }
  }

  private resolveWaiter(itt: number, pdu: Pdu): void {
    const w = this.waiters.get(itt);
    if (!w) return;
    this.waiters.delete(itt);
    w.resolve(pdu);
  }

  /** Sends an immediate PDU that expects one answer with the same ITT. */
  private request(build: (itt: number) => Pdu, timeoutMs: number): Promise<Pdu> {
    const conn = this.conn;
    if (!conn || conn.closed || this._state !== SessionState.up) return Promise.reject(new TransportError('ECONNRESET', `${this.address}: not connected`));
    const itt = this.allocItt();
    return new Promise<Pdu>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(itt);
        reject(new TransportError('ETIMEDOUT', `${this.address}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(itt, {
        itt,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      conn.send(build(itt));
    });
  }

  private async abortTask(task: Task, reason: TransportError): Promise<void> {
    if (task.aborting) return;
    task.aborting = true;
    const tmfTimeout = this.options.tmfTimeoutMs ?? 5000;
    try {
      const r = await this.request(
        (itt) => ({
          opcode: Opcode.TASK_MGMT_REQUEST,
          immediate: true,
          function: TmfFunction.ABORT_TASK,
          lun: task.lun,
          itt,
          referencedTaskTag: task.itt,
          cmdSN: this.cmdSN,
          expStatSN: this.expStatSN,
          refCmdSN: task.cmdSN,
          expDataSN: 0,
        }),
        tmfTimeout,
      );
      const response = r.opcode === Opcode.TASK_MGMT_RESPONSE ? r.response : -1;
      if (response !== TmfResponse.FUNCTION_COMPLETE && response !== TmfResponse.TASK_DOES_NOT_EXIST) {
        // The target kept the task: only dropping the connection ends it for sure.
        task.conn?.destroy(new TransportError('ECONNRESET', `${this.address}: ABORT TASK refused (${response})`));
      }
    } catch (e) {
      // No answer to the abort: escalate to the connection, which ends the task at the target.
      if (e instanceof TransportError && e.code === 'ETIMEDOUT') task.conn?.destroy(e);
    }
    this.failTask(task, reason);
    this.pump();
  }

  /** Sends a NOP-Out and waits for the target's NOP-In. Resolves with the round trip in ms. */
  async ping(timeoutMs = this.options.nopTimeoutMs ?? 5000): Promise<number> {
    await this.connect();
    const t0 = performance.now();
    await this.request((itt) => ({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt, ttt: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN }), timeoutMs);
    return performance.now() - t0;
  }

  /** A Text request with the given pairs (SendTargets...); resolves with the answer's pairs. */
  async text(pairs: ReadonlyArray<readonly [string, string]>, timeoutMs = 10000): Promise<Array<[string, string]>> {
    await this.connect();
    const data = encodeText(pairs);
    const collected: Buffer[] = [];
    let ttt = RESERVED_TAG;
    for (let round = 0; round < 64; round++) {
      const cmdSN = this.cmdSN;
      this.cmdSN = (this.cmdSN + 1) >>> 0;
      const r = await this.request(
        (itt) => ({ opcode: Opcode.TEXT_REQUEST, immediate: false, final: true, continue: false, lun: 0n, itt, ttt, cmdSN, expStatSN: this.expStatSN, data: round === 0 ? data : new Uint8Array(0) }),
        timeoutMs,
      );
      if (r.opcode !== Opcode.TEXT_RESPONSE) throw new IscsiProtocolError(`${this.address}: expected a text response`);
      collected.push(Buffer.from(r.data ?? new Uint8Array(0)));
      if (!r.continue) return parseText(Buffer.concat(collected), undefined, true);
      ttt = r.ttt;
    }
    throw new IscsiProtocolError(`${this.address}: text response did not end in 64 PDUs`);
  }

  private startPings(): void {
    const every = this.options.nopIntervalMs ?? 0;
    if (!every || this.pingTimer) return;
    this.pingTimer = setInterval(() => {
      if (this._state !== SessionState.up || Date.now() - this.lastRx < every) return;
      this.ping().catch((e: unknown) => this.conn?.destroy(e as Error));
    }, every);
    this.pingTimer.unref();
  }

  private onClosed(conn: PduSocket, err?: Error): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (this._state !== SessionState.closed) this._state = SessionState.down;
    const code = this._state === SessionState.closed ? 'ECLOSED' : 'ECONNRESET';
    const lost = new TransportError(code, `${this.address}: connection ${code === 'ECLOSED' ? 'closed' : 'lost'} with the command in flight`, err ? { cause: err } : undefined);
    for (const task of [...this.tasks.values()]) {
      if (task.conn !== conn || task.aborting) continue;
      this.failTask(task, lost);
    }
    for (const w of [...this.waiters.values()]) {
      this.waiters.delete(w.itt);
      w.reject(lost);
    }
    this.outstanding = [...this.tasks.values()].length;
    // Commands still queued were never sent; they go out after the next login.
    if (this.queue.length && this._state === SessionState.down) {
      if (this.options.reconnect === false) for (const t of this.queue.splice(0)) t.reject(lost);
      else this.reconnect();
    }
  }

  /** Logs out (best effort, 2 s) and closes. Commands in flight reject with `ECLOSED`. Idempotent. */
  async close(): Promise<void> {
    if (this._state === SessionState.closed) return;
    const conn = this.conn;
    if (conn && this._state === SessionState.up && this.tasks.size === 0) {
      const cmdSN = this.cmdSN;
      this.cmdSN = (this.cmdSN + 1) >>> 0;
      await this.request((itt) => ({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, reason: LogoutReason.CLOSE_SESSION, itt, cid: 0, cmdSN, expStatSN: this.expStatSN }), 2000).catch(() => undefined);
    }
    this._state = SessionState.closed;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const closed = new TransportError('ECLOSED', `${this.address} closed with the command in flight`);
    for (const task of [...this.tasks.values()]) this.failTask(task, closed);
    for (const t of this.queue.splice(0)) t.reject(closed);
    if (conn) {
      await new Promise<void>((resolve) => {
        if (conn.socket.destroyed) return resolve();
        conn.socket.once('close', () => resolve());
        conn.destroy();
      });
    }
  }
}
