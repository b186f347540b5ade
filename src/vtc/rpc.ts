/**
 * A small authenticated request/response protocol over TCP, on the frames of src/net:
 * every request and answer is one HMAC-SHA256 frame (replay-protected, addressed by
 * index into a participant list shared by the whole PtP system). A frame's payload is
 * `u32 json length | JSON envelope | binary body`, so volume data travels without base64.
 * The VTS server and the VTC control endpoint both use it.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { DEFAULT_MAX_FRAME, FrameCodec, FrameSplitter } from '../net/frame.js';
import type { FrameStats } from '../net/frame.js';
import type { MacAlgorithm } from '../ptp/mac.js';
import { BadRequestError, RemoteError, RpcTimeoutError, UnreachableError, codeOf } from './errors.js';

/** Name of the operator (CLI) in the participant list. */
export const OPERATOR = 'operator';
export const vtsParticipant = (x: string): string => `vts-${x}`;

/** Everyone who may speak in a PtP system, in the fixed order frames index. */
export function participants(vtcs: readonly string[]): string[] {
  return [OPERATOR, ...vtcs, vtsParticipant('A'), vtsParticipant('B')];
}

export interface RpcSecurity {
  readonly names: readonly string[];
  readonly mac: MacAlgorithm;
  readonly maxFrame?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function pack(envelope: unknown, body?: Uint8Array): Uint8Array {
  const json = enc.encode(JSON.stringify(envelope));
  const out = new Uint8Array(4 + json.length + (body?.length ?? 0));
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  if (body !== undefined) out.set(body, 4 + json.length);
  return out;
}

function unpack(payload: Uint8Array): { envelope: unknown; body: Uint8Array } {
  if (payload.length < 4) throw new BadRequestError('RPC payload shorter than its header');
  const n = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
  if (n > payload.length - 4) throw new BadRequestError('RPC payload length field is wrong');
  return { envelope: JSON.parse(dec.decode(payload.subarray(4, 4 + n))), body: payload.subarray(4 + n) };
}

/** Bytes of body a single frame may carry with room for the envelope. */
export const MAX_BODY = 256 * 1024;

export interface RpcReply {
  readonly result?: unknown;
  readonly body?: Uint8Array;
}

/**
 * Handles one request. `from` is authenticated (MAC with the cluster secret). Throwing
 * sends the error's `code`, `name` and message back to the caller.
 */
export type RpcHandler = (from: string, method: string, params: Record<string, unknown>, body: Uint8Array) => Promise<RpcReply>;

export interface RpcServerStats {
  frames: FrameStats;
  poisoned: number;
  badRequests: number;
  handled: number;
}

/**
 * Serves requests on one address. Frames failing authentication, replayed, from an unknown
 * sender or oversized are counted in `stats` and never reach the handler. No timeout of
 * its own: a handler runs to its end even if the caller gave up; `close` ends every
 * connection (answers in flight are lost) and the listener.
 */
export class RpcServer {
  readonly #codec: FrameCodec;
  readonly #self: string;
  readonly #handler: RpcHandler;
  readonly #max: number;
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;
  readonly stats: RpcServerStats;

  constructor(self: string, sec: RpcSecurity, handler: RpcHandler) {
    this.#self = self;
    this.#max = sec.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#codec = new FrameCodec({ vtcs: sec.names, self, mac: sec.mac, maxFrame: this.#max }, Date.now());
    this.#handler = handler;
    this.stats = { frames: this.#codec.stats, poisoned: 0, badRequests: 0, handled: 0 };
  }

  /** Resolves with the bound port (0 asks the OS); rejects on a bind error (EADDRINUSE...). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((s) => this.#accept(s));
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.#server = server;
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });
  }

  #accept(sock: Socket): void {
    this.#sockets.add(sock);
    sock.setNoDelay(true);
    const split = new FrameSplitter(this.#max);
    sock.on('data', (chunk: Buffer) => {
      const r = split.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      for (const f of r.frames) this.#frame(sock, f);
      if (r.error !== undefined) {
        this.stats.poisoned++;
        if (r.error === 'oversized') this.stats.frames.rejected.oversized++;
        else this.stats.frames.rejected.malformed++;
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.#sockets.delete(sock));
  }

  #frame(sock: Socket, frame: Uint8Array): void {
    const r = this.#codec.open(frame, Date.now());
    if (!r.ok) return;
    let id: unknown;
    let method: string;
    let params: Record<string, unknown>;
    let body: Uint8Array;
    try {
      const u = unpack(r.payload);
      const e = u.envelope as { id?: unknown; m?: unknown; p?: unknown };
      if (typeof e !== 'object' || e === null || typeof e.m !== 'string' || typeof e.id !== 'number') throw new BadRequestError('not an RPC request');
      id = e.id;
      method = e.m;
      params = typeof e.p === 'object' && e.p !== null ? (e.p as Record<string, unknown>) : {};
      body = u.body;
    } catch {
      this.stats.badRequests++;
      return;
    }
    const from = r.from;
    const reply = (env: unknown, b?: Uint8Array): void => {
      if (sock.destroyed) return;
      try {
        sock.write(this.#codec.seal(from, pack(env, b), Date.now()));
      } catch {
        // An answer too large to seal is a handler bug; the caller times out.
      }
    };
    this.#handler(from, method, params, body).then(
      (res) => {
        this.stats.handled++;
        reply({ id, ok: true, r: res.result ?? null }, res.body);
      },
      (err: unknown) => {
        const e = err as { name?: unknown; message?: unknown };
        reply({ id, ok: false, e: { code: codeOf(err), name: typeof e?.name === 'string' ? e.name : 'Error', message: typeof e?.message === 'string' ? e.message : String(err) } });
      },
    );
  }

  get self(): string {
    return this.#self;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    const s = this.#server;
    this.#server = null;
    if (s !== null) await new Promise<void>((r) => s.close(() => r()));
  }
}

export interface CallOptions {
  readonly body?: Uint8Array;
  /** Default: the client's timeout. */
  readonly timeoutMs?: number;
}

interface Pending {
  resolve: (v: { result: unknown; body: Uint8Array }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Calls one RPC server. Connects lazily and again after a connection drops.
 * Timeout: a call rejects with {@link RpcTimeoutError} after `timeoutMs` (the request may
 * still run on the server). Cancel: not supported per call; `close` rejects every pending
 * call with {@link UnreachableError}. Error: a refused or dropped connection rejects with
 * UnreachableError; an error answered by the server rejects with {@link RemoteError}
 * carrying its code.
 */
export class RpcClient {
  readonly #codec: FrameCodec;
  readonly #to: string;
  #host: string;
  #port: number;
  readonly #max: number;
  readonly #timeout: number;
  #sock: Socket | null = null;
  #connecting: Promise<Socket> | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  /** Fault injection (scenarios): when set, every call fails as unreachable without touching the network. */
  blocked = false;
  // Several clients may speak as the same participant (two operator shells): a random
  // sub-millisecond offset keeps their (sentAt, counter) pairs apart, so the server's
  // replay filter never mistakes one for the other.
  readonly #skew = Math.random() * 0.999;

  constructor(self: string, to: string, address: { host: string; port: number }, sec: RpcSecurity, timeoutMs = 10_000) {
    this.#to = to;
    this.#host = address.host;
    this.#port = address.port;
    this.#max = sec.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#codec = new FrameCodec({ vtcs: sec.names, self, mac: sec.mac, maxFrame: this.#max }, Date.now());
    this.#timeout = timeoutMs;
  }

  get target(): string {
    return this.#to;
  }

  setAddress(address: { host: string; port: number }): void {
    this.#host = address.host;
    this.#port = address.port;
    this.#sock?.destroy();
  }

  #connect(): Promise<Socket> {
    if (this.#sock !== null && !this.#sock.destroyed) return Promise.resolve(this.#sock);
    if (this.#connecting !== null) return this.#connecting;
    this.#connecting = new Promise<Socket>((resolve, reject) => {
      const sock = createConnection({ host: this.#host, port: this.#port });
      sock.setNoDelay(true);
      const split = new FrameSplitter(this.#max);
      const fail = (e: Error): void => {
        this.#connecting = null;
        reject(new UnreachableError(`${this.#to} at ${this.#host}:${this.#port}`, e));
      };
      sock.once('error', fail);
      sock.once('connect', () => {
        sock.off('error', fail);
        sock.on('error', () => undefined);
        this.#sock = sock;
        this.#connecting = null;
        resolve(sock);
      });
      sock.on('data', (chunk: Buffer) => {
        const r = split.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        for (const f of r.frames) this.#answer(f);
        if (r.error !== undefined) sock.destroy();
      });
      sock.on('close', () => {
        if (this.#sock === sock) this.#sock = null;
        for (const [id, p] of this.#pending) {
          this.#pending.delete(id);
          clearTimeout(p.timer);
          p.reject(new UnreachableError(`${this.#to} (connection closed)`));
        }
      });
    });
    return this.#connecting;
  }

  #answer(frame: Uint8Array): void {
    const r = this.#codec.open(frame, Date.now());
    if (!r.ok || r.from !== this.#to) return;
    let env: { id?: unknown; ok?: unknown; r?: unknown; e?: { code?: unknown; name?: unknown; message?: unknown } };
    let body: Uint8Array;
    try {
      const u = unpack(r.payload);
      env = u.envelope as typeof env;
      body = u.body;
    } catch {
      return;
    }
    if (typeof env.id !== 'number') return;
    const p = this.#pending.get(env.id);
    if (p === undefined) return;
    this.#pending.delete(env.id);
    clearTimeout(p.timer);
    if (env.ok === true) p.resolve({ result: env.r, body: body.slice() });
    else p.reject(new RemoteError(String(env.e?.code ?? 'EUNKNOWN'), String(env.e?.name ?? 'Error'), String(env.e?.message ?? 'remote error')));
  }

  async call(method: string, params: Record<string, unknown> = {}, o: CallOptions = {}): Promise<{ result: unknown; body: Uint8Array }> {
    if (this.#closed || this.blocked) throw new UnreachableError(this.#to);
    const id = this.#nextId++;
    const ms = o.timeoutMs ?? this.#timeout;
    return new Promise((resolve, reject) => {
      // The timeout covers connecting too: a peer behind a dead link never answers the SYN.
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        this.#pending.delete(id);
        reject(new RpcTimeoutError(`${this.#to} (${method})`, ms));
      }, ms);
      this.#connect().then(
        (sock) => {
          if (expired) return;
          this.#pending.set(id, { resolve, reject, timer });
          try {
            sock.write(this.#codec.seal(this.#to, pack({ id, m: method, p: params }, o.body), Date.now() + this.#skew));
          } catch (e) {
            this.#pending.delete(id);
            clearTimeout(timer);
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  close(): void {
    this.#closed = true;
    this.#sock?.destroy();
    this.#sock = null;
  }
}
