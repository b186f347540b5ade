/** The operator's side of a VTC's control endpoint (used by the CLI and by tests). */
import type { OperatorCommand } from '../ptp/engine.js';
import { HmacSha256 } from '../ptp/mac.js';
import type { AgentStatus, Address, CloseResult, ElectionView, KeySummary } from './agent.js';
import { OPERATOR, participants, RpcClient } from './rpc.js';

/**
 * Talks to one VTC as the operator. Every call rejects with UnreachableError when the VTC
 * cannot be reached, RpcTimeoutError after `timeoutMs` (a command may still complete),
 * or RemoteError carrying the VTC's error code (EPTP_THRESHOLD, EPTP_UNKNOWN_VTS,
 * EPTP_CONFLICT, EVTC_CONFLICT, EPTP_NO_QUORUM...).
 */
export class ControlClient {
  readonly vtc: string;
  readonly #rpc: RpcClient;
  constructor(vtcs: readonly string[], vtc: string, address: Address, secret: string | Uint8Array, timeoutMs = 30_000) {
    this.vtc = vtc;
    this.#rpc = new RpcClient(OPERATOR, vtc, address, { names: participants(vtcs), mac: new HmacSha256(secret) }, timeoutMs);
  }
  async status(): Promise<AgentStatus> {
    return (await this.#rpc.call('status')).result as AgentStatus;
  }
  async command(cmd: OperatorCommand, timeoutMs = 30_000): Promise<KeySummary> {
    return (await this.#rpc.call('command', { cmd, timeoutMs }, { timeoutMs: timeoutMs + 2000 })).result as KeySummary;
  }
  async writeVolume(volser: string, data: Uint8Array, copyMode?: 'immediate' | 'deferred'): Promise<CloseResult> {
    return (await this.#rpc.call('write-volume', { volser, ...(copyMode === undefined ? {} : { copyMode }) }, { body: data })).result as CloseResult;
  }
  async readVolume(volser: string): Promise<{ vts: string; data: Uint8Array }> {
    const r = await this.#rpc.call('read-volume', { volser });
    return { vts: (r.result as { vts: string }).vts, data: r.body };
  }
  async elections(): Promise<ElectionView[]> {
    return (await this.#rpc.call('elections')).result as ElectionView[];
  }
  /** Fault injection; the VTC must run with faults allowed (PTPVTS_ALLOW_FAULTS=1). */
  async faults(f: { cut?: readonly string[]; loss?: number; pauseCopies?: boolean }): Promise<void> {
    await this.#rpc.call('faults', f);
  }
  close(): void {
    this.#rpc.close();
  }
}
