/** A VTC's typed view of one remote VTS (vts-server.ts), over the authenticated RPC. */
import { tlsNet } from '../platform/net.js';
import type { PlatformNet, TlsSettings } from '../platform/net.js';
import type { VtsName } from '../ptp/types.js';
import { RpcClient, vtsParticipant } from './rpc.js';
import type { RpcEnv, RpcSecurity } from './rpc.js';

/**
 * The sockets with which participant `self` reaches VTS `x` over TLS: a PSK client sends
 * `self` as its identity; a certificate client checks that the VTS's certificate names
 * `vts-<x>` (a subjectAltName DNS entry) and shows its own.
 */
export function vtsTlsNet(tls: TlsSettings, self: string, x: VtsName): PlatformNet {
  return tlsNet('psk' in tls ? { psk: tls.psk, identity: self } : { ca: tls.ca, cert: tls.cert, key: tls.key, servername: vtsParticipant(x) });
}

export interface RemoteView {
  readonly name: VtsName;
  readonly inOperation: boolean;
  readonly lastKeySeq: number;
  readonly behind: readonly string[];
  /** Volume exports and incoming copies in progress (a host write's copy after its close): a normal stop waits for them. */
  readonly transfers?: number;
  readonly lastKeyMac?: string;
  readonly imageId?: string;
  readonly bootId?: string;
  readonly tokenSum?: number;
  readonly mounts: number;
  readonly refusing: boolean;
}

export interface RemoteToken {
  readonly volser: string;
  readonly generation: number;
  readonly consistent: boolean;
  readonly dataGeneration: number;
}

/** The caller's epoch: seq and MAC of its newest key. The VTS refuses (EFENCED) when it recorded a newer key, or another key with that seq. */
export interface EpochFence {
  readonly epoch: number;
  readonly epochMac: string;
  /** The VTS's boot the caller knows; the VTS refuses when it has restarted since. */
  readonly bootId?: string;
  /** The newest seq the caller knows the VTS confirmed recording; the VTS refuses when it reports less. */
  readonly minSeq?: number;
}

export type RemoteRead = { readonly kind: 'block'; readonly data: Uint8Array; readonly truncated: boolean } | { readonly kind: 'filemark' } | { readonly kind: 'eod' };


/**
 * Every method rejects with UnreachableError (link down, VTS process gone),
 * RpcTimeoutError (no answer in time; the operation may still run on the VTS) or
 * RemoteError carrying the VTS's own error code (EVTSOUT, EFENCED, ESTALEGEN...).
 */
export class VtsClient {
  readonly name: VtsName;
  readonly rpc: RpcClient;
  /**
   * This VTC process's run id, sent with every view (heartbeat) and mount: the VTS abandons
   * the mounts of the VTC's earlier runs when it first sees a new one, and refuses those runs
   * (ESTALERUN) from then on. Undefined: mounts are bound only by the VTS's idle bound.
   */
  readonly run: string | undefined;
  readonly #timeoutMs: number;

  /** `env`: sockets, clock and randomness of the RPC (node:net and the real clock by default). */
  constructor(self: string, name: VtsName, address: { host: string; port: number }, sec: RpcSecurity, timeoutMs = 10_000, run?: string, env: RpcEnv = {}) {
    this.name = name;
    this.#timeoutMs = timeoutMs;
    this.run = run;
    this.rpc = new RpcClient(self, vtsParticipant(name), address, sec, timeoutMs, env);
  }

  get #runParam(): { run?: string } {
    return this.run === undefined ? {} : { run: this.run };
  }

  async #r<T>(m: string, p: Record<string, unknown> = {}, body?: Uint8Array, timeoutMs?: number): Promise<T> {
    const r = await this.rpc.call(m, p, { ...(body === undefined ? {} : { body }), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return r.result as T;
  }

  view(timeoutMs?: number): Promise<RemoteView> {
    return this.#r('view', this.#runParam, undefined, timeoutMs);
  }
  /** Every volume's token; with `fence`, only if no newer key fenced the caller there. */
  tokens(fence?: EpochFence): Promise<RemoteToken[]> {
    return this.#r('tokens', fence === undefined ? {} : { ...fence });
  }
  /** Resolves with the view when `fence` passes on the VTS (a check, nothing changes); rejects EFENCED otherwise. */
  fence(fence: EpochFence): Promise<RemoteView> {
    return this.#r('fence', { ...fence });
  }
  /** Records key `seq` (its MAC kept beside it, for the fence). */
  record(seq: number, mac?: string): Promise<RemoteView> {
    return this.#r('record', { seq, ...(mac === undefined ? {} : { mac }) });
  }
  /** Puts the VTS in operation, recording `seq` unless it is null. */
  setIn(seq: number | null, mac?: string): Promise<RemoteView> {
    return this.#r('set-in', seq === null ? {} : { seq, ...(mac === undefined ? {} : { mac }) });
  }
  setOut(seq: number, reason: string, mac?: string): Promise<RemoteView> {
    return this.#r('set-out', { seq, reason, ...(mac === undefined ? {} : { mac }) });
  }
  refuse(refuse: boolean): Promise<RemoteView> {
    return this.#r('refuse', { refuse });
  }
  abort(reason: string): Promise<{ aborted: number }> {
    return this.#r('abort', { reason });
  }
  /** Moves the token ahead of the data (a deferred copy is pending), fenced by the writer's epoch when given. */
  /** `write`: the mark acknowledges a host write on the peer (see VtsUnit.markBehind): refused while the volume is busy here or when this VTS knows that generation already. */
  markBehind(volser: string, generation: number, fence?: EpochFence, write = false): Promise<unknown> {
    return this.#r('mark-behind', { volser, generation, ...fence, ...(write ? { write: true } : {}) });
  }
  /**
   * Mounts `volser`. `o.tag` names the mount for {@link abandonTag}: a VTC whose mount call
   * got no answer cannot know whether the VTS made it, nor its handle.
   */
  async mount(volser: string, o: { scratch?: boolean; writable?: boolean; epoch?: number; epochMac?: string; bootId?: string; minSeq?: number; tag?: string }): Promise<number> {
    return (await this.#r<{ h: number }>('mount', { volser, ...o, ...this.#runParam })).h;
  }
  /** Ends the mount this run sent with `tag`, made or still to come (it will then not be made); nothing it wrote is committed. */
  abandonTag(tag: string): Promise<RemoteView> {
    return this.#r('abandon-tag', { tag, ...this.#runParam });
  }
  async write(h: number, data: Uint8Array): Promise<void> {
    await this.#r('write', { h }, data);
  }
  async writeFilemark(h: number): Promise<void> {
    await this.#r('filemark', { h });
  }
  async read(h: number, max: number): Promise<RemoteRead> {
    const r = await this.rpc.call('read', { h, max });
    const res = r.result as { kind: 'block' | 'filemark' | 'eod'; truncated?: boolean };
    if (res.kind === 'block') return { kind: 'block', data: r.body, truncated: res.truncated === true };
    return { kind: res.kind };
  }
  async rewind(h: number): Promise<void> {
    await this.#r('rewind', { h });
  }
  /** Ends mount `h` without committing what it wrote (a no-op for a handle already gone). */
  abandon(h: number): Promise<RemoteView> {
    return this.#r('abandon', { h });
  }
  /** Closes mount `h` (a write: commits `generation`; with `sha256`, only data of that hash). The answer names the committed data's hash when the VTS made data current. */
  close(h: number, o: { generation?: number; epoch?: number; epochMac?: string; bootId?: string; minSeq?: number; sha256?: string }): Promise<{ generation: number; consistent: boolean; sha256?: string }> {
    return this.#r('close', { h, ...o });
  }
  exportOpen(volser: string): Promise<{ xid: number; token: { generation: number; consistent: boolean }; bytes: number; sha256: string }> {
    return this.#r('export-open', { volser, ...this.#runParam });
  }
  async exportRead(xid: number): Promise<Uint8Array | null> {
    const r = await this.rpc.call('export-read', { xid });
    return (r.result as { done: boolean }).done ? null : r.body;
  }
  async exportRelease(xid: number): Promise<void> {
    await this.#r('export-release', { xid });
  }
  /**
   * Opens a copy of `volser` into this VTS. `idleMs` tells the VTS how long a silence means
   * this copier failed: between two of its calls it waits at most one read from the source
   * and one call here, each bounded by the RPC timeout, so three timeouts.
   */
  async copyOpen(volser: string, token: { generation: number }, sha256: string, fence?: EpochFence): Promise<number> {
    return (await this.#r<{ cid: number }>('copy-open', { volser, token, sha256, idleMs: 3 * this.#timeoutMs, ...fence, ...this.#runParam })).cid;
  }
  async copyWrite(cid: number, chunk: Uint8Array): Promise<void> {
    await this.#r('copy-write', { cid }, chunk);
  }
  /** Drops copy `cid` unfinished: nothing of it is committed (a no-op for a copy already gone). */
  async copyAbort(cid: number): Promise<void> {
    await this.#r('copy-abort', { cid });
  }
  copyClose(cid: number): Promise<{ generation: number; consistent: boolean }> {
    return this.#r('copy-close', { cid }, undefined, 60_000);
  }
  disconnect(): void {
    this.rpc.close();
  }
}
