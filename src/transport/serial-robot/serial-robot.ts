/**
 * Client of a serial robot console (docs/serial-robot-protocol.md) over any byte stream:
 * a `serialport` port (real hardware, a pseudo-terminal, or serialport's mock binding) or
 * an in-memory Duplex. Its `inventory`, `move` and `exchange` have the names and result
 * shapes of `MediaChanger`, so a VTS can use a serial robot as its library's robotics.
 */
import type { Duplex } from 'node:stream';
import type { ElementStatus } from '../../scsi/parse-element-status.js';
import {
  LineSplitter,
  MAX_TAG,
  RobotErrorCode,
  UNTAGGED,
  formatRequest,
  parseInventoryLine,
  parseReply,
  parseStatus,
  robotErrorName,
} from './protocol.js';
import type * as SerialPortModule from 'serialport';
import type { InventoryLine, RobotErrorName, RobotRequest, RobotStatus } from './protocol.js';

/** Codes of {@link SerialRobotError}: the robot's own names, or transport codes. */
export type SerialRobotErrorCode = RobotErrorName | 'ETIMEDOUT' | 'ECANCELED' | 'ECONNRESET' | 'ECLOSED' | 'EPROTO' | 'ENOSERIALPORT';

/**
 * A robot command that failed. `code` is the robot's error name (`SOURCE_EMPTY`,
 * `DOOR_LOCKED`...) with `robotCode` its number, or a transport code: `ETIMEDOUT` (no
 * answer in time), `ECANCELED`, `ECONNRESET` (the line closed or failed), `ECLOSED`
 * (closed by the caller), `EPROTO` (an answer the client cannot read). After a transport
 * code the command's effect on the robot is unknown: re-read the inventory.
 */
export class SerialRobotError extends Error {
  override readonly name = 'SerialRobotError';
  readonly code: SerialRobotErrorCode;
  readonly robotCode?: number;
  constructor(code: SerialRobotErrorCode, message: string, options?: { cause?: unknown; robotCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.robotCode !== undefined) this.robotCode = options.robotCode;
  }
}

export interface SerialRobotOptions {
  /** Timeout of PING, STATUS and INV, in ms. Default 30 000. */
  readonly commandTimeoutMs?: number;
  /** Timeout of MOVE, EXCH and DOOR, in ms. Default 15 min (robots are slow). */
  readonly motionTimeoutMs?: number;
}

/** Per-call options, as `MediaChanger`'s `CallOptions`. */
export interface RobotCallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** The inventory in `MediaChanger`'s shape. */
export interface RobotInventory {
  readonly transports: readonly ElementStatus[];
  readonly storage: readonly ElementStatus[];
  readonly importExport: readonly ElementStatus[];
  readonly dataTransfer: readonly ElementStatus[];
  readonly all: readonly ElementStatus[];
}

export interface SerialRobotStats {
  /** Lines that were not well-formed replies (bad checksum, noise, too long). */
  garbage: number;
  /** Well-formed replies to no pending request (late answers, untagged errors). */
  stray: number;
  commands: number;
}

interface Pending {
  readonly verb: string;
  readonly data: string[];
  resolve(v: { payload: string; data: string[] }): void;
  reject(e: SerialRobotError): void;
}

const typeCode: Record<InventoryLine['kind'], 1 | 2 | 3 | 4> = { TRANSPORT: 1, SLOT: 2, IE: 3, DRIVE: 4 };

function toElement(l: InventoryLine): ElementStatus {
  return {
    type: typeCode[l.kind],
    address: l.address,
    full: l.full,
    except: l.except,
    access: l.access,
    asc: 0,
    ascq: 0,
    ed: false,
    mediumType: 0,
    invert: false,
    ...(l.barcode !== undefined ? { primaryVolumeTag: { identifier: l.barcode, sequenceNumber: 0 } } : {}),
    ...(l.source !== undefined ? { sourceAddress: l.source } : {}),
  };
}

/**
 * A serial robot. Requests are tagged, so several may be outstanding (the robot answers
 * STATUS while it moves; it answers a second motion with `BUSY`).
 *
 * Timeout: the promise rejects with `ETIMEDOUT`; a late answer is counted as stray and
 * dropped. Cancel (`signal`): rejects with `ECANCELED` at once; the robot may still carry
 * the command out. Disconnect (the stream closes or errors, a cable pulled): every
 * pending command rejects with `ECONNRESET`, as does every later one. Line noise: lines
 * that fail the checksum or the reply grammar are dropped and counted in `stats.garbage`,
 * never matched to a request.
 */
export class SerialRobot {
  readonly stats: SerialRobotStats = { garbage: 0, stray: 0, commands: 0 };
  private readonly splitter = new LineSplitter();
  private readonly pending = new Map<string, Pending>();
  private nextTag = 1;
  private failure: SerialRobotError | undefined;
  private readonly onData = (chunk: Buffer | string): void => this.feed(chunk);
  private readonly onClose = (err?: unknown): void => this.lost(err);
  private readonly onError = (err: unknown): void => this.lost(err);

  constructor(
    private readonly stream: Duplex,
    private readonly options: SerialRobotOptions = {},
    readonly address = 'serial-robot',
  ) {
    stream.on('data', this.onData);
    stream.on('close', this.onClose);
    stream.on('error', this.onError);
    if (stream.destroyed) this.lost(undefined);
  }

  /**
   * Opens a serial port at `path` (a real port or a pseudo-terminal) and checks the robot
   * answers PING. Rejects with `ECONNRESET` when the port cannot be opened, and with the
   * PING's error when the robot does not answer. `lock` (exclusive use) defaults to true
   * except for pseudo-terminals.
   */
  static async open(path: string, options: SerialRobotOptions & { baudRate?: number; handshake?: boolean; lock?: boolean } = {}): Promise<SerialRobot> {
    let mod: typeof SerialPortModule;
    try {
      mod = await import('serialport');
    } catch (err) {
      // An optional dependency: a machine without serial robots may be installed without it.
      throw new SerialRobotError('ENOSERIALPORT', `cannot open ${path}: the optional package serialport is not installed or cannot be loaded here (${(err as Error).message}); install it with \`npm install serialport\``, { cause: err });
    }
    const { SerialPort } = mod;
    // A pseudo-terminal's exclusive-use flag outlives the client while the server holds
    // the slave open, so locking would refuse every reopen after the first client.
    const lock = options.lock ?? !path.startsWith('/dev/pts/');
    const port = new SerialPort({ path, baudRate: options.baudRate ?? 9600, autoOpen: false, lock });
    await new Promise<void>((resolve, reject) =>
      port.open((err) => (err ? reject(new SerialRobotError('ECONNRESET', `cannot open ${path}: ${err.message}`, { cause: err })) : resolve())),
    );
    const robot = new SerialRobot(port, options, `serial:${path}`);
    if (options.handshake ?? true) {
      try {
        await robot.handshake();
      } catch (err) {
        await robot.close();
        throw err;
      }
    }
    return robot;
  }

  /** Ends any partial line on the robot's side, then PINGs. */
  async handshake(o: RobotCallOptions = {}): Promise<string> {
    this.stream.write('\r\n');
    return this.ping(o);
  }

  /** The robot's name (`PONG <name>`). */
  async ping(o: RobotCallOptions = {}): Promise<string> {
    const r = await this.request({ tag: '', verb: 'PING' }, this.options.commandTimeoutMs ?? 30_000, o);
    return r.payload.replace(/^PONG ?/u, '');
  }

  async status(o: RobotCallOptions = {}): Promise<RobotStatus> {
    const r = await this.request({ tag: '', verb: 'STATUS' }, this.options.commandTimeoutMs ?? 30_000, o);
    const s = parseStatus(r.payload);
    if (!s) throw new SerialRobotError('EPROTO', `${this.address}: unreadable STATUS answer "${r.payload}"`);
    return s;
  }

  /** The robot's inventory lines as sent. */
  async inventoryLines(o: RobotCallOptions = {}): Promise<InventoryLine[]> {
    const r = await this.request({ tag: '', verb: 'INV' }, this.options.commandTimeoutMs ?? 30_000, o);
    const lines = r.data.map((d) => parseInventoryLine(d));
    if (lines.some((l) => l === undefined) || String(lines.length) !== r.payload.trim()) {
      throw new SerialRobotError('EPROTO', `${this.address}: INV answered ${r.payload} but sent ${r.data.length} readable lines`);
    }
    return lines as InventoryLine[];
  }

  /** Every element, grouped as `MediaChanger.inventory()` groups them. */
  async inventory(o: RobotCallOptions = {}): Promise<RobotInventory> {
    const all = (await this.inventoryLines(o)).map(toElement);
    const of = (t: number): ElementStatus[] => all.filter((e) => e.type === t);
    return { transports: of(1), storage: of(2), importExport: of(3), dataTransfer: of(4), all };
  }

  /** The element holding `barcode`, as `MediaChanger.findByBarcode`. */
  async findByBarcode(barcode: string, o: RobotCallOptions & { inventory?: RobotInventory } = {}): Promise<ElementStatus | undefined> {
    const inv = o.inventory ?? (await this.inventory(o));
    return inv.all.find((e) => e.full && e.primaryVolumeTag?.identifier === barcode.trimEnd());
  }

  async move(source: number, destination: number, o: RobotCallOptions = {}): Promise<void> {
    await this.request({ tag: '', verb: 'MOVE', source, destination }, this.options.motionTimeoutMs ?? 15 * 60_000, o);
  }

  async exchange(source: number, firstDestination: number, secondDestination: number, o: RobotCallOptions = {}): Promise<void> {
    await this.request({ tag: '', verb: 'EXCH', source, first: firstDestination, second: secondDestination }, this.options.motionTimeoutMs ?? 15 * 60_000, o);
  }

  /** Opens or closes the import/export door. */
  async door(action: 'open' | 'close', o: RobotCallOptions = {}): Promise<void> {
    await this.request({ tag: '', verb: 'DOOR', action: action === 'open' ? 'OPEN' : 'CLOSE' }, this.options.motionTimeoutMs ?? 15 * 60_000, o);
  }

  /** Pending commands reject with `ECLOSED`; the stream is destroyed. Idempotent. */
  async close(): Promise<void> {
    if (!this.failure) this.fail(new SerialRobotError('ECLOSED', `${this.address} is closed`));
    this.stream.off('data', this.onData);
    if (!this.stream.destroyed) {
      await new Promise<void>((resolve) => {
        this.stream.once('close', () => resolve());
        this.stream.destroy();
      });
    }
    this.stream.off('close', this.onClose);
    this.stream.off('error', this.onError);
  }

  private takeTag(): string {
    for (;;) {
      const t = String(this.nextTag);
      this.nextTag = this.nextTag >= MAX_TAG ? 1 : this.nextTag + 1;
      if (!this.pending.has(t)) return t;
    }
  }

  private request(r: RobotRequest, defaultTimeoutMs: number, o: RobotCallOptions): Promise<{ payload: string; data: string[] }> {
    if (this.failure) return Promise.reject(new SerialRobotError(this.failure.code, this.failure.message, { cause: this.failure }));
    const tag = this.takeTag();
    const req = { ...r, tag } as RobotRequest;
    const timeoutMs = o.timeoutMs ?? defaultTimeoutMs;
    this.stats.commands++;
    return new Promise((resolve, reject) => {
      const t: { timer?: NodeJS.Timeout } = {};
      const cleanup = (): void => {
        if (t.timer) clearTimeout(t.timer);
        o.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(tag);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new SerialRobotError('ECANCELED', `${this.address}: ${r.verb} cancelled; the robot may still carry it out`));
      };
      this.pending.set(tag, {
        verb: r.verb,
        data: [],
        resolve: (v) => {
          cleanup();
          resolve(v);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      t.timer = setTimeout(() => {
        cleanup();
        reject(new SerialRobotError('ETIMEDOUT', `${this.address}: no answer to ${r.verb} within ${timeoutMs} ms; its effect on the robot is unknown`));
      }, timeoutMs);
      this.stream.write(`${formatRequest(req)}\r\n`, (err) => {
        if (err) this.lost(err);
      });
    });
  }

  private feed(chunk: Buffer | string): void {
    for (const ev of this.splitter.push(typeof chunk === 'string' ? chunk : new Uint8Array(chunk))) {
      if (ev.kind === 'overlong') {
        this.stats.garbage++;
        continue;
      }
      const reply = parseReply(ev.text);
      if (!reply) {
        this.stats.garbage++;
        continue;
      }
      const p = reply.tag === UNTAGGED ? undefined : this.pending.get(reply.tag);
      if (!p) {
        this.stats.stray++;
        continue;
      }
      if (reply.kind === 'data') p.data.push(reply.payload);
      else if (reply.kind === 'ok') p.resolve({ payload: reply.payload, data: p.data });
      else {
        const name = robotErrorName(reply.code) ?? 'INTERNAL';
        p.reject(
          new SerialRobotError(name, `${this.address}: ${p.verb} failed: ${reply.code} ${reply.name} ${reply.text}`.trimEnd(), {
            robotCode: reply.code ?? RobotErrorCode.INTERNAL,
          }),
        );
      }
    }
  }

  private lost(err: unknown): void {
    if (this.failure) return;
    const why = err instanceof Error ? `: ${err.message}` : '';
    this.fail(new SerialRobotError('ECONNRESET', `${this.address}: the serial line closed${why}; commands in flight have unknown effect`, err === undefined || err === null ? undefined : { cause: err }));
  }

  private fail(e: SerialRobotError): void {
    this.failure = e;
    for (const p of [...this.pending.values()]) p.reject(new SerialRobotError(e.code, e.message, { cause: e }));
    this.pending.clear();
    this.splitter.reset();
  }
}
