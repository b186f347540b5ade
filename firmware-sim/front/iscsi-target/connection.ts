/**
 * A connection of the iSCSI target: its socket, its phase (login, full feature, gone),
 * the sequence numbers it answers with, the PDUs it takes in and where each goes: login
 * (login.ts), the CmdSN window (cmdsn-window.ts), SCSI commands and Data-Out (task.ts),
 * task management (tmf.ts), text (text.ts); NOP and Logout are answered here.
 */
import type { Socket } from 'node:net';
import { LoginStatus, LogoutReason, LogoutResponse, Opcode, RejectReason, RESERVED_TAG, BHS_LENGTH } from '../../../src/iscsi/constants.js';
import type { ChapCredentials } from '../../../src/iscsi/chap.js';
import type { BufferPool } from '../../../src/iscsi/buffer-pool.js';
import { TargetLogin } from '../../../src/iscsi/login.js';
import { DEFAULT_PARAMS, type localParams, type SessionParams } from '../../../src/iscsi/negotiate.js';
import type { LoginRequestPdu, NopOutPdu, Pdu, TargetPdu } from '../../../src/iscsi/pdu.js';
import { PduSocket } from '../../../src/iscsi/pdu-socket.js';
import { Admitted, CmdSnWindow } from './cmdsn-window.js';
import { EMPTY, headerOf, type OrderedPdu } from './common.js';
import { loginFail, onLogin } from './login.js';
import type { IscsiSessionInfo, IscsiTargetObserver, IscsiTargetOptions, IscsiTargetStats } from './options.js';
import { TaskSet } from './task.js';
import { TextRequests } from './text.js';
import { taskManagement } from './tmf.js';

/** What the server shares with its connections. */
export interface TargetContext {
  readonly options: IscsiTargetOptions;
  /** The observer's per-command callback, looked up once: the command path tests only this. */
  readonly commandDone: IscsiTargetObserver['commandDone'];
  readonly iqn: string;
  readonly stats: IscsiTargetStats;
  portal: string;
  /** Receive buffers of large PDUs and Data-Out, shared by the connections. */
  readonly pool: BufferPool;
  readonly local: ReturnType<typeof localParams>;
  readonly chap: { secretFor: (name: string) => string | undefined; mutual?: ChapCredentials } | undefined;
  allocTsih(): number;
  register(c: TargetConnection): void;
  findSession(tsih: number): TargetConnection | undefined;
  forget(c: TargetConnection): void;
}

/**
 * One connection, and with it one session (ERL 0, one connection per session). Its state
 * is shared with the modules that handle its PDUs (login, task, responder, tmf, text): they
 * read and advance it through this object.
 */
export class TargetConnection {
  readonly conn: PduSocket;
  phase: 'login' | 'full' | 'gone' = 'login';
  readonly login: TargetLogin;
  /** The first Login Request: ISID, TSIH, ITT and CID stay its own for the whole login. */
  firstLogin: LoginRequestPdu | undefined;
  loginTimer: NodeJS.Timeout | undefined;
  tsih = 0;
  isid = 0n;
  initiatorName = '';
  /** The I_T nexus the units know this session by. */
  nexus = '';
  discovery = false;
  params: SessionParams = DEFAULT_PARAMS;
  private statSN = 1;
  readonly window: CmdSnWindow;
  readonly tasks: TaskSet;
  private readonly text: TextRequests;
  private nextTtt = 1;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingOutstanding: { ttt: number; since: number } | undefined;
  private lastRx = Date.now();
  private closedPromise: Promise<void>;
  private cleaned = false;
  endReason = 'connection closed';
  private readonly peer: string;

  constructor(
    socket: Socket,
    readonly ctx: TargetContext,
  ) {
    this.tasks = new TaskSet(this);
    this.window = new CmdSnWindow(ctx.options.cmdWindow ?? 32, () => this.tasks.size);
    this.text = new TextRequests(this);
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.login = new TargetLogin({
      hasTarget: (n) => n === ctx.iqn,
      allowDiscovery: ctx.options.allowDiscovery ?? true,
      ...(ctx.chap ? { chap: ctx.chap } : {}),
      local: ctx.local,
      portalGroupTag: ctx.options.portalGroupTag ?? 1,
      targetAlias: ctx.options.target.name,
    });
    let onClosed: () => void = () => undefined;
    this.closedPromise = new Promise<void>((r) => (onClosed = r));
    this.conn = new PduSocket(socket, {
      pdu: (p) => this.onPdu(p),
      malformed: (err) => {
        if (this.phase === 'login') return loginFail(this, LoginStatus.INVALID_DURING_LOGIN);
        this.reject(err.reason, err.header);
      },
      framing: (e) => {
        if (e.kind === 'header-digest') {
          this.ctx.stats.dropped++;
          return;
        }
        if (this.phase === 'login') return loginFail(this, LoginStatus.INITIATOR_ERROR);
        if (e.kind === 'too-long') return this.reject(RejectReason.PROTOCOL_ERROR, e.bhs);
        this.reject(RejectReason.DATA_DIGEST_ERROR, e.bhs);
        // At ERL 0 lost command data cannot be asked for again: the session has to go.
        const op = (e.bhs[0] ?? 0) & 0x3f;
        if (op === Opcode.SCSI_COMMAND || op === Opcode.DATA_OUT) this.drop('data digest error on command data');
      },
      closed: () => {
        this.cleanup();
        onClosed();
      },
    }, { coalesce: true, pool: ctx.pool });
    this.conn.maxRecv = 8192;
    this.loginTimer = setTimeout(() => this.drop('login timeout'), ctx.options.loginTimeoutMs ?? 15000);
    this.loginTimer.unref();
  }

  sessionKey(): string {
    return this.nexus;
  }

  /** StatSN (advanced when `advance`, for a response that takes one), ExpCmdSN and MaxCmdSN for a PDU. */
  sn(advance: boolean): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    return { statSN: advance ? this.nextStatSN() : this.statSN, expCmdSN: this.window.expCmdSN, maxCmdSN: this.window.maxCmdSN() };
  }

  /** The StatSN for a response, advancing it. */
  nextStatSN(): number {
    const statSN = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return statSN;
  }

  send(p: TargetPdu): void {
    if (this.phase === 'gone') return;
    this.conn.send(p);
    // A peer that never reads must not make us buffer without bound.
    if (this.conn.queuedBytes > 32 * 1024 * 1024) this.drop('peer does not read');
  }

  reject(reason: number, header: Uint8Array): void {
    this.ctx.stats.rejects++;
    this.send({ opcode: Opcode.REJECT, reason, ...this.sn(true), dataSN: 0, data: Uint8Array.from(header.subarray(0, BHS_LENGTH)) });
  }

  drop(why: string): Promise<void> {
    if (this.phase !== 'gone') {
      this.endReason = why;
      this.conn.destroy();
    }
    return this.closedPromise;
  }

  info(): IscsiSessionInfo {
    return { initiator: this.initiatorName, isid: this.isid.toString(16).padStart(12, '0'), tsih: this.tsih, peer: this.peer, discovery: this.discovery };
  }

  private cleanup(): void {
    // Logout and a refused login set the phase to gone before the socket closes: the
    // connection must still be forgotten then, or the target counts it open for ever.
    if (this.cleaned) return;
    this.cleaned = true;
    const wasFull = this.nexus !== '' && this.tsih !== 0;
    this.phase = 'gone';
    this.ctx.stats.pdusIn += this.conn.pdusIn;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.tasks.abortAll('connection closed', true);
    this.window.clear();
    this.ctx.forget(this);
    if (wasFull) this.ctx.options.observer?.sessionEnded?.(this.info(), this.endReason);
  }

  /** NOP-In pings once the connection is idle, and a drop when one goes unanswered. */
  startPings(): void {
    const every = this.ctx.options.nopInIntervalMs ?? 30000;
    if (!every) return;
    const timeout = this.ctx.options.nopInTimeoutMs ?? 10000;
    this.pingTimer = setInterval(
      () => {
        const now = Date.now();
        if (this.pingOutstanding) {
          if (now - this.pingOutstanding.since > timeout) void this.drop('NOP-In unanswered');
          return;
        }
        if (now - this.lastRx < every) return;
        const ttt = this.allocTtt();
        this.pingOutstanding = { ttt, since: now };
        this.send({ opcode: Opcode.NOP_IN, lun: 0n, itt: RESERVED_TAG, ttt, ...this.sn(false) });
      },
      Math.max(10, Math.min(every, timeout) / 2),
    );
    this.pingTimer.unref();
  }

  /** A target transfer tag (R2T, NOP-In, Text continuation). */
  allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt + 1 >= RESERVED_TAG ? 1 : this.nextTtt + 1;
    return t;
  }

  // ----------------------------------------------------------- full feature phase

  /** True when the PDU's memory is kept (a SCSI command: its task gives it back). */
  private onPdu(p: Pdu): boolean {
    this.lastRx = Date.now();
    if (this.phase === 'gone') return false;
    if (this.phase === 'login') {
      if (p.opcode !== Opcode.LOGIN_REQUEST) loginFail(this, LoginStatus.INVALID_DURING_LOGIN);
      else onLogin(this, p);
      return false;
    }
    switch (p.opcode) {
      case Opcode.DATA_OUT:
        this.tasks.onDataOut(p);
        return false;
      case Opcode.NOP_OUT:
        if (p.itt === RESERVED_TAG) {
          // The answer to our ping (or a one-way ping): it consumes no CmdSN.
          if (this.pingOutstanding && p.ttt === this.pingOutstanding.ttt) this.pingOutstanding = undefined;
          return false;
        }
        return this.ordered(p);
      case Opcode.SCSI_COMMAND:
        // Kept: it may wait in the CmdSN window, and its immediate data may be the task's Data-Out.
        this.ordered(p);
        return true;
      case Opcode.TASK_MGMT_REQUEST:
      case Opcode.TEXT_REQUEST:
      case Opcode.LOGOUT_REQUEST:
        // Kept while it waits in the CmdSN window: its (pooled) memory must not be reused before it is handled.
        return this.ordered(p);
      default:
        this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
        return false;
    }
  }

  /**
   * CmdSN ordering (RFC 7143 4.2.2.1): immediate PDUs go at once, others in CmdSN order
   * within the window. True when `p` waits in the window (handled later, from this object).
   */
  private ordered(p: OrderedPdu): boolean {
    if (this.discovery && p.opcode !== Opcode.TEXT_REQUEST && p.opcode !== Opcode.LOGOUT_REQUEST && p.opcode !== Opcode.NOP_OUT) {
      this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
      return false;
    }
    if (p.immediate) {
      this.dispatch(p);
      return false;
    }
    const admitted = this.window.admit(p, this.dispatcher);
    // Outside the window or a duplicate: silently ignored, as the RFC requires.
    if (admitted === Admitted.outside) this.ctx.stats.dropped++;
    return admitted === Admitted.held;
  }

  private readonly dispatcher = (p: OrderedPdu): void => this.dispatch(p);

  private dispatch(p: Pdu): void {
    if (this.phase !== 'full') return;
    switch (p.opcode) {
      case Opcode.SCSI_COMMAND:
        return this.tasks.onCommand(p);
      case Opcode.TASK_MGMT_REQUEST:
        return void taskManagement(this, p);
      case Opcode.TEXT_REQUEST:
        return this.text.handle(p);
      case Opcode.LOGOUT_REQUEST: {
        const reason = p.reason;
        let response: number = LogoutResponse.SUCCESS;
        if (reason === LogoutReason.REMOVE_FOR_RECOVERY) response = LogoutResponse.RECOVERY_NOT_SUPPORTED;
        else if (reason === LogoutReason.CLOSE_CONNECTION && p.cid !== (this.firstLogin?.cid ?? 0)) response = LogoutResponse.CID_NOT_FOUND;
        else if (reason !== LogoutReason.CLOSE_SESSION && reason !== LogoutReason.CLOSE_CONNECTION) return this.reject(RejectReason.INVALID_PDU_FIELD, headerOf(p));
        this.send({ opcode: Opcode.LOGOUT_RESPONSE, response, itt: p.itt, ...this.sn(true), time2Wait: 0, time2Retain: 0 });
        if (response === LogoutResponse.SUCCESS) {
          this.endReason = 'logout';
          this.tasks.abortAll('logout', false);
          this.phase = 'gone';
          this.conn.end();
        }
        return;
      }
      case Opcode.NOP_OUT:
        return this.onNop(p);
      default:
        return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    }
  }

  private onNop(p: NopOutPdu): void {
    const data = p.data ?? EMPTY;
    const echo = data.subarray(0, this.params.initiatorMaxRecvDataSegmentLength);
    this.send({ opcode: Opcode.NOP_IN, lun: p.lun, itt: p.itt, ttt: RESERVED_TAG, ...this.sn(true), ...(echo.length ? { data: Uint8Array.from(echo) } : {}) });
  }
}
