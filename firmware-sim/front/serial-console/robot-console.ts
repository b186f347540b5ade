/**
 * The serial robot console of an emulated library (docs/serial-robot-protocol.md). Robot
 * commands go to the library's changer LU as SCSI commands through an in-process port,
 * so a move over the console fails exactly as MOVE MEDIUM does; only the doors, which
 * SCSI cannot open, use the library's operator API.
 */
import type { Duplex } from 'node:stream';
import { MediaChanger } from '../../../src/devices/media-changer.js';
import { SenseError } from '../../../src/devices/errors.js';
import { Cdb } from '../../../src/scsi/index.js';
import { SenseKey, decodeSense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import type { ElementStatus } from '../../../src/scsi/parse-element-status.js';
import {
  LineSplitter,
  UNTAGGED,
  formatData,
  formatErr,
  formatInventoryLine,
  formatOk,
  formatStatus,
  parseRequest,
  parseTag,
} from '../../../src/transport/serial-robot/protocol.js';
import type { InventoryLine, RobotErrorName, RobotRequest } from '../../../src/transport/serial-robot/protocol.js';
import { MemoryPort } from '../memory-port.js';
import type { LogicalUnit } from '../../engine/types.js';

/**
 * What the console needs of a library; `EmulatedLibrary` fits it. Without `openDoor` and
 * `closeDoor`, DOOR answers `ERR 50 INTERNAL`.
 */
export interface ConsoleLibrary {
  readonly name: string;
  readonly changer: LogicalUnit;
  openDoor?(door?: 'import-export'): Promise<void>;
  closeDoor?(door?: 'import-export'): Promise<void>;
  readonly model?: { doorState(door: 'import-export'): 'open' | 'closed' };
}

export interface RobotConsoleOptions {
  /** How long a motion may take before the console answers ROBOT_JAM, in ms. Default 15 min. */
  readonly motionTimeoutMs?: number;
  /** I_T nexus name the changer sees. Default `serial-console:<library>`. */
  readonly initiator?: string;
}

export interface RobotConsoleStats {
  lines: number;
  /** Lines refused before execution (syntax, checksum, unknown command, too long). */
  refused: number;
  executed: number;
  failed: number;
}

/** A failure of a robot command, already sorted into a protocol error code. */
class ConsoleFailure extends Error {
  override readonly name = 'ConsoleFailure';
  constructor(
    readonly code: RobotErrorName,
    message: string,
  ) {
    super(message);
  }
}

const UA_RETRIES = 4;

/** Sorts sense from the changer into the protocol's codes. */
function classify(key: number, asc: number, ascq: number): RobotErrorName {
  const k = (asc << 8) | ascq;
  if (k === 0x2101) return 'INVALID_ADDRESS';
  if (k === 0x3b0e) return 'SOURCE_EMPTY';
  if (k === 0x3b0d) return 'DESTINATION_FULL';
  if (asc === 0x30) return 'INCOMPATIBLE_MEDIUM';
  if (k === 0x3b11) return 'DOOR_OPEN';
  if (k === 0x5302) return 'REMOVAL_PREVENTED';
  if (key === SenseKey.NOT_READY) return 'NOT_READY';
  if (key === SenseKey.HARDWARE_ERROR) return 'ROBOT_JAM';
  return 'INTERNAL';
}

function kindOf(type: number): InventoryLine['kind'] {
  return type === 1 ? 'TRANSPORT' : type === 3 ? 'IE' : type === 4 ? 'DRIVE' : 'SLOT';
}

function toLine(e: ElementStatus): InventoryLine {
  const barcode = e.primaryVolumeTag?.identifier;
  return {
    address: e.address,
    kind: kindOf(e.type),
    full: e.full,
    except: e.except,
    access: e.access,
    ...(e.full && barcode ? { barcode } : {}),
    ...(e.full && e.sourceAddress !== undefined ? { source: e.sourceAddress } : {}),
  };
}

/**
 * Serves the protocol on `stream` (a pty master, a socket, an in-memory pair). Motion
 * commands run one at a time; a second one while the first runs is answered BUSY, while
 * STATUS and PING answer at once. Garbage never reaches the robot: a line that is not a
 * whole, valid request is answered with an ERR and changes nothing.
 *
 * Errors writing to the stream stop the console; `stop()` detaches it without closing the
 * stream. A motion in progress at `stop()` completes in the library (robots do not stop
 * half-way) but its reply is not sent.
 */
export class RobotConsole {
  readonly stats: RobotConsoleStats = { lines: 0, refused: 0, executed: 0, failed: 0 };
  private readonly splitter = new LineSplitter();
  private readonly port: MemoryPort;
  private readonly changer: MediaChanger;
  private busy = false;
  private stopped = false;
  private readonly onData = (chunk: Buffer | string): void => this.feed(chunk);
  private readonly onEnd = (): void => this.stop();

  constructor(
    private readonly library: ConsoleLibrary,
    private readonly stream: Duplex,
    private readonly options: RobotConsoleOptions = {},
  ) {
    this.port = new MemoryPort(library.changer, { initiator: options.initiator ?? `serial-console:${library.name}` });
    this.changer = new MediaChanger(this.port, { motionTimeoutMs: options.motionTimeoutMs ?? 15 * 60_000 });
    stream.on('data', this.onData);
    stream.on('error', this.onEnd);
    stream.on('close', this.onEnd);
  }

  /** Whether a motion command is running. */
  get robotBusy(): boolean {
    return this.busy;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stream.off('data', this.onData);
    this.stream.off('error', this.onEnd);
    this.stream.off('close', this.onEnd);
    void this.port.close();
  }

  private send(line: string): void {
    if (this.stopped || this.stream.destroyed) return;
    this.stream.write(`${line}\r\n`);
  }

  private feed(chunk: Buffer | string): void {
    for (const ev of this.splitter.push(typeof chunk === 'string' ? chunk : new Uint8Array(chunk))) {
      this.stats.lines++;
      if (ev.kind === 'overlong') {
        this.stats.refused++;
        const m = /^\s*(\S+)\s/u.exec(ev.head);
        this.send(formatErr(parseTag(m?.[1]) ?? UNTAGGED, 'LINE_TOO_LONG', `lines are at most 128 bytes; the line starting "${ev.head.replace(/[^\x20-\x7e]/gu, '?')}" was dropped`));
        continue;
      }
      const parsed = parseRequest(ev.text);
      if ('error' in parsed) {
        this.stats.refused++;
        this.send(formatErr(parsed.error.tag, parsed.error.code, parsed.error.text));
        continue;
      }
      this.dispatch(parsed.request);
    }
  }

  private dispatch(r: RobotRequest): void {
    if (r.verb === 'PING') {
      this.send(formatOk(r.tag, `PONG ${this.library.name.replace(/[^\x21-\x7e]/gu, '_').replace(/\*/gu, '_')}`));
      return;
    }
    if (r.verb === 'STATUS') {
      void this.status(r.tag);
      return;
    }
    if (this.busy) {
      this.stats.refused++;
      this.send(formatErr(r.tag, 'BUSY', 'the robot is executing another command'));
      return;
    }
    this.busy = true;
    void this.execute(r).finally(() => {
      this.busy = false;
    });
  }

  private async status(tag: string): Promise<void> {
    let ready = true;
    let why: RobotErrorName | undefined;
    try {
      for (let i = 0; i < UA_RETRIES; i++) {
        const t = await this.port.execute({ ...Cdb.testUnitReady(), timeoutMs: 10_000 });
        if (t.status === ScsiStatus.GOOD) break;
        const s = t.sense.length > 0 ? decodeSense(t.sense) : undefined;
        if (s?.key === SenseKey.UNIT_ATTENTION && i < UA_RETRIES - 1) continue;
        ready = false;
        why = s ? classify(s.key, s.asc, s.ascq) : 'INTERNAL';
        if (s?.key === SenseKey.NOT_READY && s.asc === 0x04 && s.ascq === 0x03) why = 'DOOR_OPEN';
        break;
      }
    } catch {
      ready = false;
      why = 'INTERNAL';
    }
    const doorOpen = this.library.model?.doorState('import-export') === 'open';
    this.send(formatOk(tag, formatStatus({ ready, robotBusy: this.busy, doorOpen, ...(why ? { why } : {}) })));
  }

  private async execute(r: RobotRequest): Promise<void> {
    try {
      const lines = await this.withUnitAttentionRetry(() => this.run(r));
      this.stats.executed++;
      for (const l of lines.data) this.send(formatData(r.tag, l));
      this.send(formatOk(r.tag, lines.ok));
    } catch (err) {
      this.stats.failed++;
      const f = this.failure(err);
      this.send(formatErr(r.tag, f.code, f.message));
    }
  }

  private async run(r: RobotRequest): Promise<{ data: string[]; ok: string }> {
    switch (r.verb) {
      case 'INV': {
        const inv = await this.changer.inventory();
        const lines = inv.all.map((e) => formatInventoryLine(toLine(e)));
        return { data: lines, ok: String(lines.length) };
      }
      case 'MOVE':
        await this.changer.move(r.source, r.destination);
        return { data: [], ok: `MOVED ${r.source} ${r.destination}` };
      case 'EXCH':
        await this.changer.exchange(r.source, r.first, r.second);
        return { data: [], ok: `EXCHANGED ${r.source} ${r.first} ${r.second}` };
      case 'DOOR': {
        const open = r.action === 'OPEN';
        const fn = open ? this.library.openDoor : this.library.closeDoor;
        if (!fn) throw new ConsoleFailure('INTERNAL', `${this.library.name} has no door control`);
        await fn.call(this.library, 'import-export');
        return { data: [], ok: `DOOR ${open ? 'OPEN' : 'CLOSED'}` };
      }
      default:
        throw new ConsoleFailure('INTERNAL', 'unreachable');
    }
  }

  /** Unit attentions (power-on, door closed) are for this console's own initiator: note and retry. */
  private async withUnitAttentionRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof SenseError && err.key === SenseKey.UNIT_ATTENTION && i < UA_RETRIES - 1) continue;
        throw err;
      }
    }
  }

  private failure(err: unknown): ConsoleFailure {
    if (err instanceof ConsoleFailure) return err;
    if (err instanceof SenseError) {
      let code = classify(err.key, err.asc, err.ascq);
      if (err.key === SenseKey.NOT_READY && err.asc === 0x04 && err.ascq === 0x03) code = 'DOOR_OPEN';
      return new ConsoleFailure(code, `${err.keyName} / ${err.ascName}`);
    }
    const e = err as { name?: unknown; code?: unknown; message?: unknown } | undefined;
    if (e?.name === 'OperatorActionError' && e.code === 'door-locked') return new ConsoleFailure('DOOR_LOCKED', String(e.message));
    if (e?.code === 'ETIMEDOUT') return new ConsoleFailure('ROBOT_JAM', 'the motion did not finish in time');
    return new ConsoleFailure('INTERNAL', String(e?.message ?? err));
  }
}
