/**
 * The in-process binding: a {@link ScsiPort} that hands commands straight to an emulated
 * logical unit. No bytes cross a process or a socket, but every rule of the contract
 * holds (argument validation, sense encoding per the unit's D_SENSE, residual, timeout and
 * cancellation by aborting the command in the unit, ECLOSED after close).
 */
import { encodeSense } from '../../src/scsi/sense.js';
import { TransportError, validateRequest, type ScsiPort, type ScsiRequest, type ScsiResponse } from '../../src/transport/scsi-port.js';
import type { EmulatedTarget, LogicalUnit } from '../engine/types.js';

export interface MemoryPortOptions {
  /** I_T nexus name the unit sees; each port is its own initiator unless told otherwise. */
  readonly initiator?: string;
  /** Default per-command timeout in ms when a request names none. Default: none (waits for ever). */
  readonly defaultTimeoutMs?: number;
}

let nextInitiator = 1;

export class MemoryPort implements ScsiPort {
  readonly address: string;
  readonly initiator: string;
  private closed = false;
  private readonly inFlight = new Set<AbortController>();

  constructor(
    private readonly unit: LogicalUnit,
    private readonly options: MemoryPortOptions = {},
  ) {
    this.initiator = options.initiator ?? `memory-initiator-${nextInitiator++}`;
    this.address = `memory:${unit.name}`;
  }

  async execute(request: ScsiRequest): Promise<ScsiResponse> {
    if (this.closed) throw new TransportError('ECLOSED', `${this.address} is closed`);
    validateRequest(request);
    const controller = new AbortController();
    this.inFlight.add(controller);
    const started = process.hrtime.bigint();
    const timeoutMs = request.timeoutMs ?? this.options.defaultTimeoutMs;
    let failure: TransportError | undefined;
    const stop = (err: TransportError): void => {
      if (failure) return;
      failure = err;
      controller.abort(err);
    };
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop(new TransportError('ETIMEDOUT', `${this.address}: command timed out after ${timeoutMs} ms`)), timeoutMs);
    const onCancel = (): void => stop(new TransportError('ECANCELED', `${this.address}: command cancelled`));
    if (request.signal?.aborted) onCancel();
    request.signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const dataInLength = request.direction === 'in' ? (request.dataInLength ?? 0) : 0;
      const running = this.unit.execute({
        initiator: this.initiator,
        cdb: request.cdb.slice(),
        ...(request.direction === 'out' && request.dataOut ? { dataOut: request.dataOut } : {}),
        dataInLength,
        signal: controller.signal,
      });
      // A command the unit finished at once needs no race against the timeout or cancel.
      const result =
        running instanceof Promise
          ? await Promise.race([running, new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true }))])
          : running;
      if (failure) throw failure;
      const data = result.data ? result.data.slice(0, dataInLength) : new Uint8Array(0);
      return {
        status: result.status,
        data,
        sense: result.sense ? encodeSense(result.sense, this.unit.senseFormat(this.initiator)) : new Uint8Array(0),
        residual: Math.max(0, dataInLength - data.length),
        durationNs: process.hrtime.bigint() - started,
      };
    } finally {
      if (timer) clearTimeout(timer);
      request.signal?.removeEventListener('abort', onCancel);
      this.inFlight.delete(controller);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.inFlight) c.abort(new TransportError('ECLOSED', `${this.address} closed with the command in flight`));
  }
}

/** A port to LUN `lun` of an emulated target. Throws when the target has no such LUN. */
export function openMemoryPort(target: EmulatedTarget, lun: number, options: MemoryPortOptions = {}): MemoryPort {
  const unit = target.luns().get(lun);
  if (!unit) throw new TransportError('ENOENT', `${target.name} has no LUN ${lun} (has ${[...target.luns().keys()].join(', ')})`);
  return new MemoryPort(unit, options);
}
