/**
 * The emulator's iSCSI target: a TCP server that puts every LUN of an
 * {@link EmulatedTarget} behind one iSCSI target name. Error recovery level 0, one
 * connection per session, as many sessions as initiators open. Malformed input gets the
 * answer RFC 7143 gives it (Reject, login failure, or a dropped connection) and never
 * touches another session.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { encodeSense, sense, Sense, type SenseData } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { BHS_LENGTH, LoginStatus, LogoutReason, LogoutResponse, Opcode, RejectReason, RESERVED_TAG, TmfFunction, TmfResponse } from '../../../src/iscsi/constants.js';
import type { ChapCredentials } from '../../../src/iscsi/chap.js';
import { SessionType, TargetLogin } from '../../../src/iscsi/login.js';
import { DEFAULT_PARAMS, localParams, type DigestName, type SessionParams } from '../../../src/iscsi/negotiate.js';
import { commandCdb, decodeLun, encodePdu, type DataOutPdu, type LogoutRequestPdu, type LoginRequestPdu, type NopOutPdu, type Pdu, type ScsiCommandPdu, type TargetPdu, type TaskMgmtRequestPdu, type TextRequestPdu } from '../../../src/iscsi/pdu.js';
import { PduSocket } from '../../../src/iscsi/pdu-socket.js';
import { BufferPool } from '../../../src/iscsi/buffer-pool.js';
import { snLte } from '../../../src/iscsi/session.js';
import { encodeText, parseText } from '../../../src/iscsi/text.js';
import type { CommandContext, CommandResult, EmulatedTarget, LogicalUnit, TaskManagement } from '../../engine/types.js';
import { LazyAbort } from '../../engine/lazy-abort.js';

export interface IscsiTargetChap {
  /** Initiator CHAP names and their secrets. */
  readonly users: Readonly<Record<string, string>> | ((name: string) => string | undefined);
  /** Credentials the target answers mutual CHAP with. */
  readonly mutual?: ChapCredentials;
}

export interface IscsiTargetOptions {
  readonly target: EmulatedTarget;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (an ephemeral port; read it from the handle). */
  readonly port?: number;
  /** Default `iqn.2026-11.io.ptpvts:<target.name>`. */
  readonly iqn?: string;
  /** Require CHAP from every initiator. */
  readonly chap?: IscsiTargetChap;
  /** Digests accepted, in order of preference. Default both CRC32C and None. */
  readonly headerDigests?: readonly DigestName[];
  readonly dataDigests?: readonly DigestName[];
  /** The target's MaxRecvDataSegmentLength. Default 256 KiB. */
  readonly maxRecvDataSegmentLength?: number;
  /** Largest MaxBurstLength accepted (the smaller of both sides' wins). Default 1 MiB. */
  readonly maxBurstLength?: number;
  /** Largest FirstBurstLength accepted (the smaller of both sides' wins). Default 256 KiB. */
  readonly firstBurstLength?: number;
  readonly immediateData?: boolean;
  readonly initialR2T?: boolean;
  /** Commands each session may have outstanding (the CmdSN window). Default 32. */
  readonly cmdWindow?: number;
  /** Ping connections idle this long with NOP-In; 0 disables. Default 30 s. */
  readonly nopInIntervalMs?: number;
  /** An unanswered ping drops the connection after this long. Default 10 s. */
  readonly nopInTimeoutMs?: number;
  /** A login not done within this drops the connection. Default 15 s. */
  readonly loginTimeoutMs?: number;
  /** Answer SendTargets discovery sessions. Default true. */
  readonly allowDiscovery?: boolean;
  readonly portalGroupTag?: number;
  /** Largest write (expected data transfer length) a command may ask for. Default 64 MiB. */
  readonly maxTransferLength?: number;
  /** Told of sessions and, when it has `commandDone`, of every command (logs, metrics). */
  readonly observer?: IscsiTargetObserver;
}

/** A session of the target, as its observer is told of it. */
export interface IscsiSessionInfo {
  /** Initiator name (`iqn....`); empty when a login failed before naming it. */
  readonly initiator: string;
  /** The initiator's ISID, 12 hex digits. */
  readonly isid: string;
  readonly tsih: number;
  /** `address:port` of the initiator's end of the connection. */
  readonly peer: string;
  readonly discovery: boolean;
}

/**
 * What a target tells about its work. Every callback runs synchronously on the target's
 * event loop turn and must not throw (an exception is the observer's bug and is not caught).
 * `commandDone` is on the command path: it gets plain arguments (no object is made per
 * command) and costs nothing when absent.
 */
export interface IscsiTargetObserver {
  /** A session logged in (normal or discovery). */
  sessionStarted?(s: IscsiSessionInfo): void;
  /** A session that had logged in ended: `reason` is `logout`, `connection closed`, `session reinstated`, `target stopping`, ... */
  sessionEnded?(s: IscsiSessionInfo, reason: string): void;
  /** A login was refused (`status` is the iSCSI login status class and detail, e.g. 0x0201). */
  loginFailed?(s: IscsiSessionInfo, status: number): void;
  /**
   * A SCSI command was answered. `bytesIn` is the Data-In sent, `bytesOut` the Data-Out
   * received; `seconds` from its arrival to its answer. `sense` is set for CHECK CONDITION.
   * Commands aborted (TMF, connection loss) are not answered and not reported.
   */
  commandDone?(initiator: string, unit: LogicalUnit | undefined, cdb: Uint8Array, status: number, sense: SenseData | undefined, bytesIn: number, bytesOut: number, seconds: number): void;
}

/** Counters for tests and logs. */
export interface IscsiTargetStats {
  connections: number;
  logins: number;
  loginFailures: number;
  commands: number;
  rejects: number;
  dropped: number;
  pdusIn: number;
}

/**
 * A running target. `stop()` closes the listener and every connection; commands in
 * flight are aborted in their units (they see their signal abort) and get no response.
 */
export interface IscsiTargetHandle {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly stats: IscsiTargetStats;
  /** Number of open connections. */
  connectionCount(): number;
  /** Receive buffers of large PDUs and Data-Out: how many were made, and how many takes reused one. */
  bufferStats(): { made: number; reused: number };
  stop(): Promise<void>;
}

/**
 * One SCSI command of a session. It is also the context the unit executes (initiator, CDB,
 * Data-Out, expected Data-In length) and its abort state: the AbortSignal is made only if
 * the unit's handler waits on it.
 */
class Task extends LazyAbort implements CommandContext {
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

const RESOLVED: Promise<void> = Promise.resolve();

export function defaultIqn(targetName: string): string {
  return `iqn.2026-11.io.ptpvts:${targetName.toLowerCase().replace(/[^a-z0-9.-]+/g, '-')}`;
}

/** Starts the target. Resolves once it listens. */
export async function startIscsiTarget(options: IscsiTargetOptions): Promise<IscsiTargetHandle> {
  const host = options.host ?? '127.0.0.1';
  const iqn = options.iqn ?? defaultIqn(options.target.name);
  const stats: IscsiTargetStats = { connections: 0, logins: 0, loginFailures: 0, commands: 0, rejects: 0, dropped: 0, pdusIn: 0 };
  const conns = new Set<TargetConnection>();
  const sessions = new Map<string, TargetConnection>();
  let nextTsih = 1;
  const chap = options.chap;
  const secretFor = chap ? (typeof chap.users === 'function' ? chap.users : (n: string) => (Object.hasOwn(chap.users, n) ? (chap.users as Record<string, string>)[n] : undefined)) : undefined;
  const ctx: TargetContext = {
    options,
    commandDone: options.observer?.commandDone?.bind(options.observer),
    iqn,
    stats,
    portal: '',
    pool: new BufferPool(),
    local: localParams({
      maxRecvDataSegmentLength: options.maxRecvDataSegmentLength ?? 262144,
      maxBurstLength: options.maxBurstLength ?? 1048576,
      firstBurstLength: options.firstBurstLength ?? 262144,
      immediateData: options.immediateData ?? true,
      initialR2T: options.initialR2T ?? false,
      headerDigests: options.headerDigests ?? ['CRC32C', 'None'],
      dataDigests: options.dataDigests ?? ['CRC32C', 'None'],
      maxConnections: 1,
      errorRecoveryLevel: 0,
    }),
    chap: secretFor ? { secretFor, ...(chap?.mutual ? { mutual: chap.mutual } : {}) } : undefined,
    allocTsih: () => {
      const t = nextTsih;
      nextTsih = nextTsih >= 0xffff ? 1 : nextTsih + 1;
      return t;
    },
    register: (c) => {
      const key = c.sessionKey();
      const old = sessions.get(key);
      // ERL 0 reinstatement: a new login with the same ISID ends the old session.
      if (old && old !== c) old.drop('session reinstated');
      sessions.set(key, c);
    },
    findSession: (tsih) => [...sessions.values()].find((c) => c.tsih === tsih),
    forget: (c) => {
      conns.delete(c);
      const key = c.sessionKey();
      if (sessions.get(key) === c) sessions.delete(key);
    },
  };
  const server: Server = createServer((socket: Socket) => {
    stats.connections++;
    conns.add(new TargetConnection(socket, ctx));
  });
  server.maxConnections = 1024;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 0);
  ctx.portal = `${host.includes(':') ? `[${host}]` : host}:${port},${options.portalGroupTag ?? 1}`;
  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    iqn,
    stats,
    connectionCount: () => conns.size,
    bufferStats: () => ({ made: ctx.pool.made, reused: ctx.pool.reused }),
    stop: () => {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...conns].map((c) => c.drop('target stopping')));
        await closed;
      })();
      return stopping;
    },
  };
}

interface TargetContext {
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

const EMPTY = new Uint8Array(0);

type OrderedPdu = NopOutPdu | ScsiCommandPdu | TaskMgmtRequestPdu | TextRequestPdu | LogoutRequestPdu;

class TargetConnection {
  private readonly conn: PduSocket;
  private phase: 'login' | 'full' | 'gone' = 'login';
  private readonly login: TargetLogin;
  private firstLogin: LoginRequestPdu | undefined;
  private loginTimer: NodeJS.Timeout | undefined;
  tsih = 0;
  private isid = 0n;
  private initiatorName = '';
  private nexus = '';
  private discovery = false;
  private params: SessionParams = DEFAULT_PARAMS;
  private statSN = 1;
  private expCmdSN = 0;
  private readonly window: number;
  private readonly tasks = new Map<number, Task>();
  /**
   * Per LU, the commands (in CmdSN order) from the first one still waiting for Data-Out
   * on: a command whose data is complete runs only once those before it have been handed
   * to the unit, so data that comes in late never lets a later command overtake.
   */
  private readonly waiting = new Map<LogicalUnit, Task[]>();
  private readonly held = new Map<number, Pdu>();
  /** ITTs of commands aborted before they arrived (ABORT TASK for a CmdSN still in the window). */
  private readonly preAborted = new Set<number>();
  private nextTtt = 1;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingOutstanding: { ttt: number; since: number } | undefined;
  private lastRx = Date.now();
  private textBuffer: Buffer[] = [];
  private closedPromise: Promise<void>;
  private cleaned = false;
  private endReason = 'connection closed';
  private readonly peer: string;

  constructor(
    socket: Socket,
    private readonly ctx: TargetContext,
  ) {
    this.window = ctx.options.cmdWindow ?? 32;
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
        if (this.phase === 'login') return this.loginFail(LoginStatus.INVALID_DURING_LOGIN);
        this.reject(err.reason, err.header);
      },
      framing: (e) => {
        if (e.kind === 'header-digest') {
          this.ctx.stats.dropped++;
          return;
        }
        if (this.phase === 'login') return this.loginFail(LoginStatus.INITIATOR_ERROR);
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

  private maxCmdSN(): number {
    const active = this.tasks.size + this.held.size;
    return (this.expCmdSN - 1 + Math.max(1, this.window - active)) >>> 0;
  }

  private sn(advance: boolean): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    return { statSN: advance ? this.nextStatSN() : this.statSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN() };
  }

  /** The StatSN for a response, advancing it. */
  private nextStatSN(): number {
    const statSN = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return statSN;
  }

  private send(p: TargetPdu): void {
    if (this.phase === 'gone') return;
    this.conn.send(p);
    // A peer that never reads must not make us buffer without bound.
    if (this.conn.queuedBytes > 32 * 1024 * 1024) this.drop('peer does not read');
  }

  private reject(reason: number, header: Uint8Array): void {
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

  private info(): IscsiSessionInfo {
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
    for (const t of this.tasks.values()) t.abort(new Error('connection closed'));
    this.tasks.clear();
    this.waiting.clear();
    this.held.clear();
    this.ctx.forget(this);
    if (wasFull) this.ctx.options.observer?.sessionEnded?.(this.info(), this.endReason);
  }

  // ------------------------------------------------------------------ login phase

  private loginFail(status: number): void {
    this.ctx.stats.loginFailures++;
    this.ctx.options.observer?.loginFailed?.(this.info(), status);
    const f = this.firstLogin;
    this.send({
      opcode: Opcode.LOGIN_RESPONSE, transit: false, continue: false, csg: 0, nsg: 0, versionMax: 0, versionActive: 0,
      isid: f?.isid ?? 0n, tsih: 0, itt: f?.itt ?? 0, ...this.sn(true), statusClass: status >> 8, statusDetail: status & 0xff,
    });
    this.phase = 'gone';
    this.conn.end();
  }

  private onLogin(req: LoginRequestPdu): void {
    if (!this.firstLogin) {
      this.firstLogin = req;
      this.isid = req.isid;
      this.expCmdSN = req.cmdSN;
      if (req.tsih !== 0) return this.loginFail(this.ctx.findSession(req.tsih) ? LoginStatus.TOO_MANY_CONNECTIONS : LoginStatus.SESSION_DOES_NOT_EXIST);
    } else if (req.isid !== this.firstLogin.isid || req.tsih !== this.firstLogin.tsih || req.itt !== this.firstLogin.itt || req.cid !== this.firstLogin.cid) {
      return this.loginFail(LoginStatus.INITIATOR_ERROR);
    }
    const step = this.login.step(req);
    if (step.failed) {
      this.ctx.stats.loginFailures++;
      this.ctx.options.observer?.loginFailed?.({ ...this.info(), initiator: req.data ? initiatorNameOf(req.data) : '' }, (step.response.statusClass << 8) | step.response.statusDetail);
      this.send({
        opcode: Opcode.LOGIN_RESPONSE, ...step.response, versionMax: 0, versionActive: 0, isid: req.isid, tsih: 0, itt: req.itt, ...this.sn(true),
      });
      this.phase = 'gone';
      this.conn.end();
      return;
    }
    let tsih = 0;
    if (step.complete) {
      tsih = this.ctx.allocTsih();
      this.tsih = tsih;
    }
    this.send({ opcode: Opcode.LOGIN_RESPONSE, ...step.response, versionMax: 0, versionActive: 0, isid: req.isid, tsih, itt: req.itt, ...this.sn(true) });
    const done = step.complete;
    if (!done) return;
    this.ctx.stats.logins++;
    this.params = done.params;
    this.initiatorName = done.initiatorName;
    this.discovery = done.sessionType === SessionType.discovery;
    this.nexus = `${this.initiatorName},i,0x${this.isid.toString(16).padStart(12, '0')}`;
    this.phase = 'full';
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.conn.txDigests = { header: this.params.headerDigest, data: this.params.dataDigest };
    this.conn.rxDigests = this.conn.txDigests;
    this.conn.maxRecv = this.params.targetMaxRecvDataSegmentLength;
    if (!this.discovery) this.ctx.register(this);
    this.ctx.options.observer?.sessionStarted?.(this.info());
    this.startPings();
  }

  private startPings(): void {
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

  private allocTtt(): number {
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
      if (p.opcode !== Opcode.LOGIN_REQUEST) this.loginFail(LoginStatus.INVALID_DURING_LOGIN);
      else this.onLogin(p);
      return false;
    }
    switch (p.opcode) {
      case Opcode.DATA_OUT:
        this.onDataOut(p);
        return false;
      case Opcode.NOP_OUT:
        if (p.itt === RESERVED_TAG) {
          // The answer to our ping (or a one-way ping): it consumes no CmdSN.
          if (this.pingOutstanding && p.ttt === this.pingOutstanding.ttt) this.pingOutstanding = undefined;
          return false;
        }
        return this.ordered(p);
      case Opcode.SCSI_COMMAND:
        // Kept: it may wait in `held`, and its immediate data may be the task's Data-Out.
        this.ordered(p);
        return true;
      case Opcode.TASK_MGMT_REQUEST:
      case Opcode.TEXT_REQUEST:
      case Opcode.LOGOUT_REQUEST:
        // Kept while it waits in `held`: its (pooled) memory must not be reused before it is handled.
        return this.ordered(p);
      default:
        this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
        return false;
    }
  }

  /**
   * CmdSN ordering (RFC 7143 4.2.2.1): immediate PDUs go at once, others in CmdSN order
   * within the window. True when `p` waits in `held` (handled later, from this object).
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
    const max = this.maxCmdSN();
    if (!snLte(this.expCmdSN, p.cmdSN) || !snLte(p.cmdSN, max)) {
      // Outside the window or a duplicate: silently ignored, as the RFC requires.
      this.ctx.stats.dropped++;
      return false;
    }
    if (p.cmdSN !== this.expCmdSN) {
      if (this.held.has(p.cmdSN)) return false;
      this.held.set(p.cmdSN, p);
      return true;
    }
    this.expCmdSN = (this.expCmdSN + 1) >>> 0;
    this.dispatch(p);
    for (let next = this.held.get(this.expCmdSN); next; next = this.held.get(this.expCmdSN)) {
      this.held.delete(this.expCmdSN);
      this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      this.dispatch(next);
    }
    return false;
  }

  private dispatch(p: Pdu): void {
    if (this.phase !== 'full') return;
    switch (p.opcode) {
      case Opcode.SCSI_COMMAND:
        return this.onCommand(p);
      case Opcode.TASK_MGMT_REQUEST:
        return void this.onTmf(p);
      case Opcode.TEXT_REQUEST:
        return this.onText(p);
      case Opcode.LOGOUT_REQUEST: {
        const reason = p.reason;
        let response: number = LogoutResponse.SUCCESS;
        if (reason === LogoutReason.REMOVE_FOR_RECOVERY) response = LogoutResponse.RECOVERY_NOT_SUPPORTED;
        else if (reason === LogoutReason.CLOSE_CONNECTION && p.cid !== (this.firstLogin?.cid ?? 0)) response = LogoutResponse.CID_NOT_FOUND;
        else if (reason !== LogoutReason.CLOSE_SESSION && reason !== LogoutReason.CLOSE_CONNECTION) return this.reject(RejectReason.INVALID_PDU_FIELD, headerOf(p));
        this.send({ opcode: Opcode.LOGOUT_RESPONSE, response, itt: p.itt, ...this.sn(true), time2Wait: 0, time2Retain: 0 });
        if (response === LogoutResponse.SUCCESS) {
          this.endReason = 'logout';
          for (const t of this.tasks.values()) t.abort(new Error('logout'));
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

  private onText(p: TextRequestPdu): void {
    this.textBuffer.push(Buffer.from(p.data ?? EMPTY));
    if (this.textBuffer.reduce((n, b) => n + b.length, 0) > 65536) {
      this.textBuffer = [];
      return this.reject(RejectReason.OUT_OF_RESOURCES, headerOf(p));
    }
    if (p.continue) {
      this.send({ opcode: Opcode.TEXT_RESPONSE, final: false, continue: false, lun: p.lun, itt: p.itt, ttt: this.allocTtt(), ...this.sn(true) });
      return;
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseText(Buffer.concat(this.textBuffer));
    } catch {
      this.textBuffer = [];
      return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    }
    this.textBuffer = [];
    const answer: Array<[string, string]> = [];
    for (const [k, v] of pairs) {
      if (k === 'SendTargets') {
        // A normal session may only ask about its own target; discovery may ask for All.
        if (v === 'All' ? this.discovery : v === '' || v === this.ctx.iqn) answer.push(['TargetName', this.ctx.iqn], ['TargetAddress', this.ctx.portal]);
        else if (v === 'All') answer.push(['SendTargets', 'Reject']);
      } else {
        answer.push([k, 'NotUnderstood']);
      }
    }
    this.send({ opcode: Opcode.TEXT_RESPONSE, final: true, continue: false, lun: p.lun, itt: p.itt, ttt: RESERVED_TAG, ...this.sn(true), data: encodeText(answer) });
  }

  private onCommand(p: ScsiCommandPdu): void {
    this.ctx.stats.commands++;
    if (this.tasks.has(p.itt) || p.itt === RESERVED_TAG) return this.reject(RejectReason.TASK_IN_PROGRESS, headerOf(p));
    if (p.read && p.write) return this.reject(RejectReason.COMMAND_NOT_SUPPORTED, headerOf(p));
    const edtl = p.expectedDataTransferLength;
    const imm = p.data ?? EMPTY;
    const prm = this.params;
    if (imm.length > 0 && (!p.write || !prm.immediateData || imm.length > edtl || imm.length > prm.firstBurstLength)) return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    if (!p.final && (!p.write || prm.initialR2T)) return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    const maxTransfer = this.ctx.options.maxTransferLength ?? 64 * 1024 * 1024;
    if (edtl > maxTransfer) return this.reject(RejectReason.OUT_OF_RESOURCES, headerOf(p));
    if (this.preAborted.size && this.preAborted.delete(p.itt)) return;
    const unit = this.unitFor(p.lun);
    // Immediate data that is the whole transfer is used where it arrived (the framer's
    // buffer belongs to this PDU); otherwise Data-Out is gathered into one buffer. Bytes
    // past `received` are never handed to the unit, so that buffer needs no clearing.
    let buffer: Uint8Array | undefined;
    if (p.write) {
      if (imm.length === edtl) buffer = imm;
      else {
        buffer = this.ctx.pool.take(edtl);
        buffer.set(imm);
      }
    }
    const task = new Task(p.itt, p.lun, unit, p, commandCdb(p), edtl, this.nexus, p.read ? edtl : 0, buffer, imm.length);
    if (this.ctx.commandDone) task.startedAt = performance.now();
    this.tasks.set(p.itt, task);
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
  private runWaiting(unit: LogicalUnit): void {
    const q = this.waiting.get(unit);
    if (!q) return;
    while (q.length > 0) {
      const head = q[0]!;
      if (head.aborted || this.tasks.get(head.itt) !== head) {
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
    const pool = this.ctx.pool;
    pool.give(task.buffer);
    pool.give(task.cmd.data);
  }

  private lunCache: ReadonlyMap<number, LogicalUnit> | undefined;
  private lastLun: { field: bigint; unit: LogicalUnit | undefined } | undefined;
  private readonly forgetLuns = (): void => {
    this.lunCache = undefined;
    this.lastLun = undefined;
  };

  /** The unit a LUN field names; the target's LUN map is asked once per task of the event loop. */
  private unitFor(field: bigint): LogicalUnit | undefined {
    const last = this.lastLun;
    if (last && last.field === field) return last.unit;
    let luns = this.lunCache;
    if (!luns) {
      luns = this.lunCache = this.ctx.options.target.luns();
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
    const length = Math.min(this.params.maxBurstLength, task.edtl - offset);
    const ttt = this.allocTtt();
    task.r2t = { ttt, offset, length };
    task.nextOffset = offset;
    this.send({ opcode: Opcode.R2T, lun: task.lun, itt: task.itt, ttt, ...this.sn(false), r2tSN: task.r2tSN++, bufferOffset: offset, desiredDataTransferLength: length });
  }

  private onDataOut(p: DataOutPdu): void {
    const task = this.tasks.get(p.itt);
    // Data for a task already aborted or finished is late, not wrong.
    if (!task || task.aborted || task.done) return;
    const data = p.data ?? EMPTY;
    const dataOut = task.buffer;
    if (!dataOut) return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    let limit: number;
    if (p.ttt === RESERVED_TAG) {
      if (!task.unsolicitedLeft) return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
      limit = Math.min(this.params.firstBurstLength, task.edtl);
    } else {
      if (!task.r2t || task.r2t.ttt !== p.ttt) return this.reject(RejectReason.INVALID_PDU_FIELD, headerOf(p));
      limit = task.r2t.offset + task.r2t.length;
    }
    if (p.bufferOffset !== task.nextOffset || p.bufferOffset + data.length > limit) return this.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    dataOut.set(data, p.bufferOffset);
    task.received += data.length;
    task.nextOffset += data.length;
    if (!p.final) return;
    if (p.ttt === RESERVED_TAG) task.unsolicitedLeft = false;
    else task.r2t = undefined;
    this.advanceData(task);
  }

  private execute(task: Task): void {
    const unit = task.unit;
    if (!unit) {
      task.done = RESOLVED;
      this.respond(task, { status: ScsiStatus.CHECK_CONDITION, sense: sense(Sense.LOGICAL_UNIT_NOT_SUPPORTED) }, undefined);
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
      if (!task.aborted && this.phase !== 'gone') this.respond(task, r, unit);
      return this.release(task);
    }
    task.done = r.then((x) => {
      this.release(task);
      if (task.aborted || this.phase === 'gone') return;
      this.respond(task, x, unit);
    });
  }

  private respond(task: Task, r: CommandResult, unit: LogicalUnit | undefined): void {
    this.tasks.delete(task.itt);
    const dataInLength = task.dataInLength;
    const data = r.data ? (r.data.length > dataInLength ? r.data.subarray(0, dataInLength) : r.data) : EMPTY;
    const residual = dataInLength - data.length;
    const commandDone = this.ctx.commandDone;
    if (commandDone) commandDone(this.initiatorName, unit, task.cdb, r.status, r.sense, data.length, task.received, (performance.now() - task.startedAt) / 1000);
    const senseBytes = r.sense ? encodeSense(r.sense, unit ? unit.senseFormat(this.nexus) : 'fixed') : EMPTY;
    const collapse = r.status === ScsiStatus.GOOD && senseBytes.length === 0;
    // As few Data-In PDUs as the initiator's MaxRecvDataSegmentLength and MaxBurstLength
    // allow; each carries a slice of the unit's data (no copy), the last one the status.
    const seg = this.params.initiatorMaxRecvDataSegmentLength;
    const burst = this.params.maxBurstLength;
    let dataSN = 0;
    for (let at = 0; at < data.length; ) {
      const burstEnd = Math.min(data.length, (Math.floor(at / burst) + 1) * burst);
      const n = Math.min(seg, burstEnd - at);
      const last = at + n >= data.length;
      const withStatus = last && collapse;
      let statSN = 0;
      if (withStatus) {
        statSN = this.nextStatSN();
      }
      this.send({
        opcode: Opcode.DATA_IN,
        final: at + n >= burstEnd,
        acknowledge: false,
        overflow: false,
        underflow: withStatus && residual > 0,
        statusPresent: withStatus,
        status: withStatus ? r.status : 0,
        lun: task.lun,
        itt: task.itt,
        ttt: RESERVED_TAG,
        statSN,
        expCmdSN: this.expCmdSN,
        maxCmdSN: this.maxCmdSN(),
        dataSN: dataSN++,
        bufferOffset: at,
        residualCount: withStatus ? residual : 0,
        data: at === 0 && n === data.length ? data : data.subarray(at, at + n),
      });
      at += n;
      if (withStatus) return;
    }
    let senseData: Uint8Array | undefined;
    if (senseBytes.length) {
      senseData = new Uint8Array(2 + senseBytes.length);
      senseData[0] = senseBytes.length >> 8;
      senseData[1] = senseBytes.length & 0xff;
      senseData.set(senseBytes, 2);
    }
    const statSN = this.nextStatSN();
    this.send({
      opcode: Opcode.SCSI_RESPONSE,
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: false,
      underflow: residual > 0,
      response: 0,
      status: r.status,
      itt: task.itt,
      snackTag: 0,
      statSN,
      expCmdSN: this.expCmdSN,
      maxCmdSN: this.maxCmdSN(),
      expDataSN: dataSN,
      bidiReadResidualCount: 0,
      residualCount: residual,
      data: senseData,
    });
  }

  private async onTmf(p: TaskMgmtRequestPdu): Promise<void> {
    const respond = (response: number): void => {
      if (this.phase === 'full') this.send({ opcode: Opcode.TASK_MGMT_RESPONSE, response, itt: p.itt, ...this.sn(true) });
    };
    const lunNumber = decodeLun(p.lun);
    const units = this.ctx.options.target.luns();
    this.forgetLuns();
    const unit = lunNumber === undefined ? undefined : units.get(lunNumber);
    const abortTasks = async (which: (t: Task) => boolean): Promise<void> => {
      const hit = [...this.tasks.values()].filter(which);
      for (const t of hit) {
        t.abort(new Error('aborted by task management'));
        this.tasks.delete(t.itt);
      }
      // Commands that waited behind an aborted one for their turn may run now.
      for (const u of new Set(hit.map((t) => t.unit))) if (u) this.runWaiting(u);
      // The answer to a TMF goes out only once the tasks it ended are over.
      await Promise.all(hit.map((t) => t.done ?? Promise.resolve()));
    };
    const fn = p.function;
    const needsLun = fn === TmfFunction.ABORT_TASK || fn === TmfFunction.ABORT_TASK_SET || fn === TmfFunction.CLEAR_TASK_SET || fn === TmfFunction.LOGICAL_UNIT_RESET;
    if (needsLun && !unit) return respond(TmfResponse.LUN_DOES_NOT_EXIST);
    const toUnit = (f: TaskManagement): void => unit?.taskManagement(f, this.nexus);
    switch (fn) {
      case TmfFunction.ABORT_TASK: {
        const t = this.tasks.get(p.referencedTaskTag);
        if (t) {
          await abortTasks((x) => x === t);
          return respond(TmfResponse.FUNCTION_COMPLETE);
        }
        // Not arrived yet but inside the window: it must not run when it comes.
        if (snLte(this.expCmdSN, p.refCmdSN) && snLte(p.refCmdSN, this.maxCmdSN())) {
          this.preAborted.add(p.referencedTaskTag);
          if (this.preAborted.size > 1024) this.preAborted.clear();
          return respond(TmfResponse.FUNCTION_COMPLETE);
        }
        return respond(TmfResponse.TASK_DOES_NOT_EXIST);
      }
      case TmfFunction.ABORT_TASK_SET:
        toUnit('abort-task-set');
        await abortTasks((t) => t.lun === p.lun);
        return respond(TmfResponse.FUNCTION_COMPLETE);
      case TmfFunction.CLEAR_TASK_SET:
        toUnit('clear-task-set');
        await abortTasks((t) => t.lun === p.lun);
        return respond(TmfResponse.FUNCTION_COMPLETE);
      case TmfFunction.LOGICAL_UNIT_RESET:
        toUnit('lu-reset');
        await abortTasks((t) => t.lun === p.lun);
        return respond(TmfResponse.FUNCTION_COMPLETE);
      case TmfFunction.TARGET_WARM_RESET:
      case TmfFunction.TARGET_COLD_RESET:
        for (const u of units.values()) u.taskManagement('target-reset', this.nexus);
        await abortTasks(() => true);
        respond(TmfResponse.FUNCTION_COMPLETE);
        if (fn === TmfFunction.TARGET_COLD_RESET) this.conn.end();
        return;
      case TmfFunction.TASK_REASSIGN:
        return respond(TmfResponse.REASSIGNMENT_NOT_SUPPORTED);
      default:
        return respond(TmfResponse.NOT_SUPPORTED);
    }
  }
}

/**
 * The BHS a Reject sends back, rebuilt from a decoded PDU: re-encoding loses nothing a
 * Reject needs, since the initiator matches it by opcode and ITT.
 */
/** InitiatorName from a login request's text, for the log of a refused login. */
function initiatorNameOf(data: Uint8Array): string {
  const m = /(?:^|\0)InitiatorName=([^\0]*)/.exec(Buffer.from(data).toString('utf8'));
  return m?.[1] ?? '';
}

function headerOf(p: Pdu): Uint8Array {
  return Uint8Array.from(encodePdu({ ...p, data: EMPTY, ahs: EMPTY }).subarray(0, BHS_LENGTH));
}
