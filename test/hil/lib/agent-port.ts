/**
 * Host side of the guest SG_IO agent (test/hil/guest/sg-agent.mjs): a {@link ScsiPort}
 * whose commands are executed inside the QEMU guest by ptpvts's own SG_IO binding against
 * /dev/sgN, through Linux's sg driver, virtio-scsi and QEMU's iSCSI initiator. The agent
 * runs one command at a time; this client keeps that order.
 */
import type { Socket } from 'node:net';
import { TransportError, validateRequest, type ScsiPort, type ScsiRequest, type ScsiResponse } from '../../../src/transport/scsi-port.js';

export interface GuestSgDevice {
  path: string;
  scsiType: number;
  vendor: string;
  model: string;
}

interface Pending {
  resolve: (v: { res: Record<string, unknown>; payload: Buffer }) => void;
  reject: (e: Error) => void;
}

export class GuestAgent {
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.fail(new TransportError('ECONNRESET', 'guest agent channel closed')));
    socket.on('error', (e) => this.fail(new TransportError('ECONNRESET', `guest agent channel failed: ${e.message}`, { cause: e })));
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const total = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + total) return;
      const jsonLen = this.buf.readUInt32BE(4);
      const res = JSON.parse(this.buf.subarray(8, 8 + jsonLen).toString()) as Record<string, unknown>;
      const payload = Buffer.from(this.buf.subarray(8 + jsonLen, 4 + total));
      this.buf = this.buf.subarray(4 + total);
      const p = this.pending.get(res.id as number);
      this.pending.delete(res.id as number);
      p?.resolve({ res, payload });
    }
  }

  async call(req: Record<string, unknown>, payload: Uint8Array = new Uint8Array(0)): Promise<{ res: Record<string, unknown>; payload: Buffer }> {
    if (this.closed) throw new TransportError('ECLOSED', 'guest agent channel is closed');
    const id = this.nextId++;
    const json = Buffer.from(JSON.stringify({ ...req, id }));
    const head = Buffer.alloc(8);
    head.writeUInt32BE(4 + json.length + payload.length, 0);
    head.writeUInt32BE(json.length, 4);
    const p = new Promise<{ res: Record<string, unknown>; payload: Buffer }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.socket.write(Buffer.concat([head, json, payload]));
    const out = await p;
    if (out.res.ok !== true) {
      const e = out.res.error as { code: string; message: string; errno?: number; syscall?: string };
      throw new TransportError(e.code, `guest: ${e.message}`, { ...(e.errno !== undefined ? { errno: e.errno } : {}), ...(e.syscall ? { syscall: e.syscall } : {}) });
    }
    return out;
  }

  /** The guest's /dev/sgN nodes as ptpvts's listSgDevices sees them (scsiType 1 tape, 8 changer). */
  async list(): Promise<GuestSgDevice[]> {
    const { res } = await this.call({ op: 'list' });
    return res.devices as GuestSgDevice[];
  }

  async open(path: string): Promise<ScsiPort> {
    const { res } = await this.call({ op: 'open', path });
    return new GuestSgPort(this, path, res.handle as number);
  }

  async quit(): Promise<void> {
    try {
      await this.call({ op: 'quit' });
    } catch {
      // the guest may already be gone
    }
    this.socket.destroy();
  }
}

class GuestSgPort implements ScsiPort {
  readonly address: string;
  private closed = false;

  constructor(private readonly agent: GuestAgent, path: string, private readonly handle: number) {
    this.address = `guest-sgio:${path}`;
  }

  async execute(request: ScsiRequest): Promise<ScsiResponse> {
    validateRequest(request);
    if (this.closed) throw new TransportError('ECLOSED', `${this.address} is closed`);
    const started = process.hrtime.bigint();
    const { res, payload } = await this.agent.call(
      {
        op: 'execute',
        handle: this.handle,
        cdb: Buffer.from(request.cdb).toString('hex'),
        direction: request.direction,
        dataInLength: request.dataInLength ?? 0,
        timeoutMs: request.timeoutMs ?? 60_000,
      },
      request.direction === 'out' ? request.dataOut : undefined,
    );
    return {
      status: res.status as number,
      data: new Uint8Array(payload),
      sense: new Uint8Array(Buffer.from(res.sense as string, 'hex')),
      residual: res.residual as number,
      durationNs: process.hrtime.bigint() - started,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.agent.call({ op: 'close', handle: this.handle }).catch(() => undefined);
  }
}
