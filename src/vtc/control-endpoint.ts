/**
 * A VTC's control endpoint: what the operator's console (signed requests) and the other
 * VTCs (status, elections) may ask of it over RPC, each request's parameters already checked
 * against its zod schema (control-protocol.ts) by the RPC server.
 */
import type { OperatorCommand } from '../ptp/engine.js';
import type { VtcAgent } from './agent.js';
import { summarizeKey } from './agent.js';
import { BadRequestError, NotAllowedError } from './errors.js';
import { MAX_BODY, OPERATOR } from './rpc.js';
import type { RpcHandler, RpcReply } from './rpc.js';

/** The RPC handler of `agent`'s control endpoint. */
export function controlHandler(agent: VtcAgent): RpcHandler {
  return async (from: string, m: string, p: Record<string, unknown>, body: Uint8Array): Promise<RpcReply> => {
    if (from !== OPERATOR && !agent.options.vtcs.includes(from)) throw new NotAllowedError(from, m);
    switch (m) {
      case 'status':
        return { result: agent.status() };
      case 'command': {
        if (from !== OPERATOR) throw new NotAllowedError(from, m);
        const timeoutMs = typeof p.timeoutMs === 'number' ? p.timeoutMs : 60_000;
        const key = await agent.command(p.cmd as OperatorCommand, timeoutMs);
        return { result: summarizeKey(key) };
      }
      case 'write-volume': {
        const copyMode = p.copyMode === 'deferred' ? 'deferred' : p.copyMode === 'immediate' ? 'immediate' : undefined;
        return { result: await agent.writeVolume(String(p.volser), body, copyMode === undefined ? {} : { copyMode }) };
      }
      case 'elections':
        return { result: agent.elections() };
      case 'faults': {
        if (from !== OPERATOR || agent.options.allowFaults !== true) throw new NotAllowedError(from, m);
        if (Array.isArray(p.cut)) {
          agent.faults.cut.clear();
          for (const v of p.cut) if (typeof v === 'string') agent.faults.cut.add(v);
        }
        if (typeof p.loss === 'number' && p.loss >= 0 && p.loss < 1) agent.faults.loss = p.loss;
        if (typeof p.pauseCopies === 'boolean') agent.copies.paused = p.pauseCopies;
        return {};
      }
      case 'read-volume': {
        const r = await agent.readVolume(String(p.volser));
        if (r.data.length > MAX_BODY) throw new BadRequestError(`volume ${String(p.volser)} is larger than one control answer`);
        return { result: { vts: r.vts, bytes: r.data.length }, body: r.data };
      }
      default:
        throw new BadRequestError(`unknown control method ${m}`);
    }
  };
}
