/** The operator's side of a VTC's control endpoint (used by the CLI and by tests). */
import type { KeyObject } from 'node:crypto';
import type { OperatorCommand } from '../ptp/engine.js';
import { HmacSha256 } from '../ptp/mac.js';
import type { AgentStatus, Address, CloseResult, ElectionView, KeySummary } from './agent.js';
import { controlMethods, describeIssues } from './control-protocol.js';
import { BadRequestError } from './errors.js';
import { OPERATOR, participants, RpcClient } from './rpc.js';

/** What the operator proves itself with: the cluster secret (frames) and its private key (every request is signed). */
export interface OperatorCredentials {
  readonly secret: string | Uint8Array;
  readonly operatorKey: KeyObject;
}

/**
 * Talks to one VTC as the operator. Every call rejects with UnreachableError when the VTC
 * cannot be reached, RpcTimeoutError after `timeoutMs` (a command may still complete),
 * BadRequestError before anything is sent when the request does not fit the control
 * schema (naming the field), or RemoteError carrying the VTC's error code (EPTP_THRESHOLD,
 * EPTP_UNKNOWN_VTS, EPTP_CONFLICT, EVTC_CONFLICT, EPTP_NO_QUORUM, EVTC_OPERATOR_AUTH...).
 */
export class ControlClient {
  readonly vtc: string;
  readonly #rpc: RpcClient;
  readonly #methods: ReturnType<typeof controlMethods>;
  constructor(vtcs: readonly string[], vtc: string, address: Address, credentials: OperatorCredentials, timeoutMs = 30_000) {
    this.vtc = vtc;
    this.#methods = controlMethods(vtcs);
    this.#rpc = new RpcClient(OPERATOR, vtc, address, { names: participants(vtcs), mac: new HmacSha256(credentials.secret), operatorPrivateKey: credentials.operatorKey }, timeoutMs);
  }
  #call(method: string, params: Record<string, unknown>, o: { body?: Uint8Array; timeoutMs?: number } = {}): Promise<{ result: unknown; body: Uint8Array }> {
    const schema = this.#methods[method];
    const r = schema?.safeParse(params);
    if (r !== undefined && !r.success) return Promise.reject(new BadRequestError(`${method}: ${describeIssues(r.error)}`, r.error));
    return this.#rpc.call(method, params, o);
  }
  async status(): Promise<AgentStatus> {
    return (await this.#call('status', {})).result as AgentStatus;
  }
  async command(cmd: OperatorCommand, timeoutMs = 30_000): Promise<KeySummary> {
    return (await this.#call('command', { cmd, timeoutMs }, { timeoutMs: timeoutMs + 2000 })).result as KeySummary;
  }
  async writeVolume(volser: string, data: Uint8Array, copyMode?: 'immediate' | 'deferred'): Promise<CloseResult> {
    return (await this.#call('write-volume', { volser, ...(copyMode === undefined ? {} : { copyMode }) }, { body: data })).result as CloseResult;
  }
  async readVolume(volser: string): Promise<{ vts: string; data: Uint8Array }> {
    const r = await this.#call('read-volume', { volser });
    return { vts: (r.result as { vts: string }).vts, data: r.body };
  }
  async elections(): Promise<ElectionView[]> {
    return (await this.#call('elections', {})).result as ElectionView[];
  }
  /** Fault injection; the VTC must run with faults allowed (PTPVTS_ALLOW_FAULTS=1). */
  async faults(f: { cut?: readonly string[]; loss?: number; pauseCopies?: boolean }): Promise<void> {
    await this.#call('faults', f);
  }
  close(): void {
    this.#rpc.close();
  }
}
