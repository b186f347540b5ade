/**
 * IMMED (SSC-4, SPC-4 deferred errors): a command with its IMMED bit set answers GOOD
 * once its CDB and the drive's state have been checked, as its mechanical part starts
 * (rewinding, locating, threading, writing filemarks), and completes in the background.
 * Meanwhile TEST UNIT READY and every medium command answer NOT READY / LOGICAL UNIT NOT
 * READY, OPERATION IN PROGRESS (a load: BECOMING READY). An error found once the
 * mechanical part began (LOCATE beyond end of data, a failed flush) is a deferred error:
 * the next command from the initiator that sent the IMMED command answers CHECK CONDITION
 * with it (response code 71h/73h), and REQUEST SENSE returns it. A reset stops the
 * operation and drops its error.
 *
 * When nothing mechanical waits (time scale 0, or no distance to travel) the command
 * completes before answering; an error it meets after its checks is still deferred.
 */
import type { SenseData } from '../../src/scsi/sense.js';
import { CheckCondition } from '../engine/check.js';
import type { Exec, Handler, HandlerResult } from '../engine/dispatch.js';
import { CommandAborted } from '../engine/timing.js';
import type { ImmediateOperation, TapeDrive } from './drive.js';
import { DriveSense } from './sense-codes.js';

/** Wraps `handler`: when `immed(cdb)`, it runs as an IMMED command named `name`. */
export function immediate(name: string, handler: Handler<TapeDrive>, immed: (cdb: Uint8Array) => boolean): Handler<TapeDrive> {
  return (x) => {
    if (!immed(x.cdb)) return handler(x);
    const d = x.device;
    if (d.immediate) d.fail(DriveSense.OPERATION_IN_PROGRESS);
    const controller = new AbortController();
    // An abort of the command before it answered stops the operation too.
    const onAbort = (): void => controller.abort(x.signal.reason);
    x.signal.addEventListener('abort', onAbort, { once: true });
    return new Promise<HandlerResult>((resolve, reject) => {
      const op: ImmediateOperation = {
        initiator: x.initiator,
        name,
        controller,
        started: false,
        released: false,
        release() {
          if (op.released) return;
          op.released = true;
          x.signal.removeEventListener('abort', onAbort);
          resolve(undefined);
        },
      };
      d.immediate = op;
      const bx: Exec<TapeDrive> = { unit: x.unit, device: d, initiator: x.initiator, cdb: x.cdb, dataOut: x.dataOut, dataInLength: x.dataInLength, signal: controller.signal };
      const over = (): void => {
        if (d.immediate === op) d.immediate = undefined;
        x.signal.removeEventListener('abort', onAbort);
      };
      const defer = (s: SenseData): void => {
        d.deferredErrors.set(op.initiator, { ...s, deferred: true });
      };
      let r: HandlerResult | Promise<HandlerResult>;
      try {
        r = handler(bx);
      } catch (e) {
        over();
        reject(e as Error);
        return;
      }
      Promise.resolve(r).then(
        (v) => {
          over();
          // A GOOD-with-sense outcome (early warning after filemarks) is reported deferred.
          const s = v && !(v instanceof Uint8Array) ? v.sense : undefined;
          if (s) defer(s);
          op.release();
        },
        (e: unknown) => {
          over();
          if (!op.released) {
            if (op.started && e instanceof CheckCondition) {
              defer(e.sense);
              op.release();
            } else reject(e as Error);
            return;
          }
          if (e instanceof CheckCondition) defer(e.sense);
          else if (!(e instanceof CommandAborted) && !controller.signal.aborted) x.unit.bugs.push({ command: name, cdb: Buffer.from(x.cdb).toString('hex'), error: e });
        },
      );
    });
  };
}

/** The deferred error pending for `initiator`, taken (it is reported once). */
export function takeDeferredError(d: TapeDrive, initiator: string): SenseData | undefined {
  const s = d.deferredErrors.get(initiator);
  if (s) d.deferredErrors.delete(initiator);
  return s;
}
