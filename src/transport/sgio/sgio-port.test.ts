import { describe, expect, it, vi } from 'vitest';
import { SgioPort, interpretCompletion } from './sgio-port.js';
import type { SgCommand, SgCompletion, SgExecutor } from './sg-executor.js';
import { TransportError } from '../scsi-port.js';
import type { ScsiRequest } from '../scsi-port.js';

const INQUIRY = Uint8Array.of(0x12, 0, 0, 0, 96, 0);
const inquiry = (extra: Partial<ScsiRequest> = {}): ScsiRequest => ({ cdb: INQUIRY, direction: 'in', dataInLength: 96, ...extra });

function completion(extra: Partial<SgCompletion> = {}): SgCompletion {
  return { status: 0, hostStatus: 0, driverStatus: 0, sense: new Uint8Array(0), data: new Uint8Array(96).fill(7), resid: 0, durationNs: 1500, info: 0, ...extra };
}

/** An executor whose commands complete when the test says so. */
class FakeExecutor implements SgExecutor {
  readonly commands: SgCommand[] = [];
  readonly waiters: { resolve: (c: SgCompletion) => void; reject: (e: unknown) => void }[] = [];
  closed = 0;
  auto: SgCompletion | undefined;
  execute(command: SgCommand): Promise<SgCompletion> {
    this.commands.push(command);
    if (this.auto !== undefined) return Promise.resolve(this.auto);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
  close(): void {
    this.closed++;
  }
}

const port = (auto?: SgCompletion, options = {}) => {
  const ex = new FakeExecutor();
  ex.auto = auto;
  return { ex, port: new SgioPort('sg:/dev/fake', ex, options) };
};

describe('SgioPort argument validation', () => {
  it.each([
    ['a short cdb', { cdb: Uint8Array.of(0, 0), direction: 'none' }],
    ['a cdb over the sg limit', { cdb: new Uint8Array(253), direction: 'none' }],
    ['a bad direction', { cdb: INQUIRY, direction: 'sideways' }],
    ['out without data', { cdb: INQUIRY, direction: 'out' }],
    ['in without a length', { cdb: INQUIRY, direction: 'in' }],
    ['a negative timeout', { cdb: INQUIRY, direction: 'none', timeoutMs: -1 }],
  ])('rejects %s with EINVAL before reaching the device', async (_what, request) => {
    const { ex, port: p } = port(completion());
    await expect(p.execute(request as unknown as ScsiRequest)).rejects.toMatchObject({ name: 'TransportError', code: 'EINVAL' });
    expect(ex.commands).toHaveLength(0);
  });

  it('rejects a bad default timeout', () => {
    expect(() => new SgioPort('x', new FakeExecutor(), { defaultTimeoutMs: 0 })).toThrow(TransportError);
  });
});

describe('SgioPort completion triage', () => {
  it('resolves GOOD with the bytes actually transferred and the residual', async () => {
    const { ex, port: p } = port(completion({ resid: 60, durationNs: 2_000_000 }));
    const r = await p.execute(inquiry());
    expect(r.status).toBe(0);
    expect(r.data).toHaveLength(36);
    expect(r.residual).toBe(60);
    expect(r.durationNs).toBe(2_000_000n);
    expect(ex.commands[0]).toMatchObject({ direction: 'in', dataInLength: 96, timeoutMs: 60_000 });
  });

  it('resolves CHECK CONDITION with its sense (DRIVER_SENSE is not a failure)', async () => {
    const sense = Uint8Array.of(0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0);
    const { port: p } = port(completion({ status: 0x02, driverStatus: 0x08, sense, resid: 96 }));
    const r = await p.execute(inquiry());
    expect(r).toMatchObject({ status: 0x02, sense, residual: 96 });
    expect(r.data).toHaveLength(0);
  });

  it('resolves other SCSI statuses (BUSY, RESERVATION CONFLICT) as data', async () => {
    for (const status of [0x08, 0x18, 0x28]) {
      const { port: p } = port(completion({ status }));
      await expect(p.execute(inquiry())).resolves.toMatchObject({ status });
    }
  });

  it('host status wins over driver and SCSI status, naming the DID_ value', async () => {
    const { port: p } = port(completion({ hostStatus: 0x04, driverStatus: 0x24, status: 0x02 }));
    const err = await p.execute(inquiry()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'EHOSTSTATUS' });
    expect((err as Error).message).toContain('DID_BAD_TARGET (0x04)');
  });

  it('driver status (other than DRIVER_SENSE) wins over SCSI status', async () => {
    const { port: p } = port(completion({ driverStatus: 0x24, status: 0x02 }));
    const err = (await p.execute(inquiry()).catch((e: unknown) => e)) as TransportError;
    expect(err.code).toBe('EDRIVERSTATUS');
    expect(err.message).toContain('DRIVER_ERROR|SUGGEST_ABORT (0x24)');
  });

  it('maps DID_TIME_OUT and DRIVER_TIMEOUT to ETIMEDOUT, passing the request timeout to the kernel', async () => {
    const a = port(completion({ hostStatus: 0x03 }));
    await expect(a.port.execute(inquiry({ timeoutMs: 1500.2 }))).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(a.ex.commands[0]?.timeoutMs).toBe(1501);
    const b = port(completion({ driverStatus: 0x06 }), { defaultTimeoutMs: 5000 });
    await expect(b.port.execute(inquiry())).rejects.toMatchObject({ code: 'ETIMEDOUT', message: expect.stringContaining('5000 ms') });
  });

  it('reports the Data-Out residual and sends the caller buffer as is', async () => {
    const dataOut = new Uint8Array(512);
    const { ex, port: p } = port(completion({ data: new Uint8Array(0), resid: 12 }));
    const r = await p.execute({ cdb: Uint8Array.of(0x0a, 0, 0, 2, 0, 0), direction: 'out', dataOut });
    expect(ex.commands[0]?.dataOut).toBe(dataOut);
    expect(r.residual).toBe(12);
    expect(r.data).toHaveLength(0);
  });

  it('clamps a nonsensical residual into 0..expected', () => {
    const cmd: SgCommand = { cdb: INQUIRY, direction: 'in', dataInLength: 96, timeoutMs: 1 };
    expect(interpretCompletion(completion({ resid: -4 }), cmd, 'x').residual).toBe(0);
    expect(interpretCompletion(completion({ resid: 1000 }), cmd, 'x').residual).toBe(96);
  });

  it('turns an ioctl failure into a TransportError keeping code, errno, syscall and cause', async () => {
    const ex = new FakeExecutor();
    const p = new SgioPort('sg:/dev/fake', ex);
    const pending = p.execute(inquiry());
    const os = Object.assign(new Error('EIO: i/o error, ioctl'), { code: 'EIO', errno: 5, syscall: 'ioctl' });
    ex.waiters[0]!.reject(os);
    const err = (await pending.catch((e: unknown) => e)) as TransportError;
    expect(err).toMatchObject({ name: 'TransportError', code: 'EIO', errno: 5, syscall: 'ioctl' });
    expect(err.cause).toBe(os);
  });
});

describe('SgioPort cancellation and close', () => {
  it('an already aborted signal rejects ECANCELED and sends nothing', async () => {
    const { ex, port: p } = port(completion());
    await expect(p.execute(inquiry({ signal: AbortSignal.abort() }))).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(ex.commands).toHaveLength(0);
  });

  it('aborting mid-command rejects ECANCELED at once; the late completion is dropped', async () => {
    const ex = new FakeExecutor();
    const p = new SgioPort('sg:/dev/fake', ex);
    const ac = new AbortController();
    const pending = p.execute(inquiry({ signal: ac.signal }));
    ac.abort(new Error('user gave up'));
    const err = (await pending.catch((e: unknown) => e)) as TransportError;
    expect(err.code).toBe('ECANCELED');
    expect(err.message).toContain('unknown');
    ex.waiters[0]!.resolve(completion());
    await new Promise((r) => setTimeout(r, 1));
  });

  it('removes its abort listener once the command completes', async () => {
    const { port: p } = port(completion());
    const ac = new AbortController();
    const spy = vi.spyOn(ac.signal, 'removeEventListener');
    await p.execute(inquiry({ signal: ac.signal }));
    expect(spy).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it('close rejects commands in flight with ECLOSED, then everything else; idempotent', async () => {
    const ex = new FakeExecutor();
    const p = new SgioPort('sg:/dev/fake', ex);
    const pending = p.execute(inquiry());
    await p.close();
    await expect(pending).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(p.execute(inquiry())).rejects.toMatchObject({ code: 'ECLOSED' });
    await p.close();
    expect(ex.closed).toBe(1);
  });
});
