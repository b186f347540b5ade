/** A scripted ScsiPort for client unit tests: answers by opcode and records every request. */
import { encodeSense, ScsiStatus } from '../../src/scsi/index.js';
import type { SenseData } from '../../src/scsi/index.js';
import type { ScsiPort, ScsiRequest, ScsiResponse } from '../../src/transport/scsi-port.js';

export type Reply = { data?: Uint8Array; sense?: SenseData; status?: number; format?: 'fixed' | 'descriptor' } | Error;
export type Script = (req: ScsiRequest, nth: number) => Reply;

export class FakePort implements ScsiPort {
  readonly address = 'fake:0';
  readonly requests: ScsiRequest[] = [];
  private readonly byOpcode = new Map<number, Script | Reply[]>();
  private readonly counts = new Map<number, number>();

  on(opcode: number, script: Script | Reply | Reply[]): this {
    this.byOpcode.set(opcode, typeof script === 'function' ? script : Array.isArray(script) ? [...script] : [script]);
    return this;
  }

  get cdbs(): number[][] {
    return this.requests.map((r) => [...r.cdb]);
  }

  async execute(req: ScsiRequest): Promise<ScsiResponse> {
    this.requests.push(req);
    const op = req.cdb[0] ?? 0;
    const nth = this.counts.get(op) ?? 0;
    this.counts.set(op, nth + 1);
    const s = this.byOpcode.get(op);
    let reply: Reply;
    if (s === undefined) reply = {};
    else if (typeof s === 'function') reply = s(req, nth);
    else reply = (s.length > 1 ? s.shift() : s[0]) ?? {};
    if (reply instanceof Error) throw reply;
    const want = req.direction === 'in' ? (req.dataInLength ?? 0) : 0;
    const data = (reply.data ?? new Uint8Array(0)).subarray(0, want);
    const status = reply.status ?? (reply.sense ? ScsiStatus.CHECK_CONDITION : ScsiStatus.GOOD);
    return { status, data, sense: reply.sense ? encodeSense(reply.sense, reply.format ?? 'fixed') : new Uint8Array(0), residual: Math.max(0, want - data.length) };
  }

  async close(): Promise<void> {}
}
