/**
 * A small authenticated request/response protocol over TCP, on the frames of src/net:
 * every request and answer is one HMAC-SHA256 frame (replay-protected, addressed by
 * index into a participant list shared by the whole PtP system). A frame's payload is
 * `u32 json length | JSON envelope | binary body`, so volume data travels without base64.
 * The VTS server and the VTC control endpoint both use it.
 *
 * The frame MAC uses the cluster secret, which every VTC and VTS holds, so on its own it
 * cannot tell the operator from any of them. A server given the operator's public key
 * therefore also requires, on every request from the operator, an Ed25519 signature by
 * the operator's private key over the request (target, method, params, body digest), a
 * random nonce and the time: a request re-wrapped in a fresh frame by a holder of the
 * cluster secret is refused as replayed, an altered one as forged.
 */
import { createHash, randomBytes, sign as edSign, verify as edVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { ZodType } from 'zod';
import { DEFAULT_MAX_FRAME, FrameCodec, FrameSplitter } from '../net/frame.js';
import type { FrameStats } from '../net/frame.js';
import { canonicalBytes } from '../ptp/codec.js';
import type { MacAlgorithm } from '../ptp/mac.js';
import { fromHex, toHex } from '../ptp/mac.js';
import { systemClock } from '../platform/clock.js';
import type { Clock, Timer } from '../platform/clock.js';
import { nodeNet } from '../platform/net.js';
import type { NetServer, NetSocket, PlatformNet, RefusedHandler } from '../platform/net.js';
import { describeIssues } from './control-protocol.js';
import { BadRequestError, OperatorAuthError, RemoteError, RpcTimeoutError, UnreachableError, codeOf } from './errors.js';

/** Name of the operator (CLI) in the participant list. */
export const OPERATOR = 'operator';
export const vtsParticipant = (x: string): string => `vts-${x}`;

/** Everyone who may speak in a PtP system, in the fixed order frames index. */
export function participants(vtcs: readonly string[]): string[] {
  return [OPERATOR, ...vtcs, vtsParticipant('A'), vtsParticipant('B')];
}

export interface RpcSecurity {
  readonly names: readonly string[];
  /** Frame MAC with the cluster secret. */
  readonly mac: MacAlgorithm;
  readonly maxFrame?: number;
  /**
   * Server: the operator's public key. When set, every request from {@link OPERATOR} must
   * carry a valid, fresh operator signature; others are refused (OperatorAuthError) and
   * counted in `stats.operator`.
   */
  readonly operatorKey?: KeyObject;
  /** Client speaking as {@link OPERATOR}: the operator's private key, to sign every request. */
  readonly operatorPrivateKey?: KeyObject;
  /**
   * Server: the params schema of every method. A method not listed, or params that do not
   * fit (wrong type, unknown field, out of range), are refused with a BadRequestError
   * naming the field before the handler runs.
   */
  readonly methods?: Readonly<Record<string, ZodType>>;
  /** How far an operator request's time may be from the server's clock, in ms (default 30 s). */
  readonly operatorWindowMs?: number;
  /**
   * Server: hears of every connection refused before a request reached the handler for
   * reasons of the channel: a failed TLS handshake, a TLS client on a plain endpoint, or
   * frames naming another sender than the one TLS authenticated. Counted in `stats.refused`.
   */
  readonly onRefused?: RefusedHandler;
}

/** The operator's signature on a request: a random nonce, the time it was made, Ed25519 over both and the request. */
export interface OperatorAuth {
  readonly n: string;
  readonly t: number;
  readonly s: string;
}

/** The bytes an operator signs: who the request is for, what it asks, a digest of its body, nonce and time. */
export function operatorSignedBytes(to: string, method: string, params: unknown, body: Uint8Array, nonce: string, at: number): Uint8Array {
  return canonicalBytes({ to, m: method, p: params, body: createHash('sha256').update(body).digest('hex'), n: nonce, t: at });
}

/** Signs a request as the operator. */
export function signOperatorRequest(key: KeyObject, to: string, method: string, params: unknown, body: Uint8Array, at: number): OperatorAuth {
  const n = randomBytes(16).toString('hex');
  return { n, t: at, s: toHex(edSign(null, operatorSignedBytes(to, method, params, body, n, at), key)) };
}

const envelopeSchema = z
  .object({
    id: z.number().int().nonnegative(),
    m: z.string().min(1).max(64),
    p: z.record(z.string(), z.unknown()).optional(),
    a: z
      .object({ n: z.string().regex(/^[0-9a-f]{32}$/), t: z.number().finite(), s: z.string().regex(/^[0-9a-f]{128}$/) })
      .strict()
      .optional(),
  })
  .strict();

/** Why operator requests were refused, and how many passed. */
export interface OperatorAuthStats {
  accepted: number;
  unsigned: number;
  badSignature: number;
  stale: number;
  replayed: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/**
 * An RPC payload as parts for {@link FrameCodec.seal}: the length-prefixed envelope, then
 * the body as it is (not copied here: the frame is its one copy on the way out).
 */
function pack(envelope: unknown, body?: Uint8Array): Uint8Array[] {
  const json = enc.encode(JSON.stringify(envelope));
  const head = new Uint8Array(4 + json.length);
  new DataView(head.buffer).setUint32(0, json.length);
  head.set(json, 4);
  return body === undefined || body.length === 0 ? [head] : [head, body];
}

function unpack(payload: Uint8Array): { envelope: unknown; body: Uint8Array } {
  if (payload.length < 4) throw new BadRequestError('RPC payload shorter than its header');
  const n = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
  if (n > payload.length - 4) throw new BadRequestError('RPC payload length field is wrong');
  return { envelope: JSON.parse(dec.decode(payload.subarray(4, 4 + n))), body: payload.subarray(4 + n) };
}

/**
 * Where an RPC end gets its sockets, time and randomness: node:net, the real clock and
 * Math.random by default; the simulation passes its own so the same code runs there.
 */
export interface RpcEnv {
  readonly net?: PlatformNet;
  readonly clock?: Clock;
  /** Uniform in [0, 1) (only the client's sub-millisecond send-time offset uses it). */
  readonly random?: () => number;
}

/** Bytes of body a single frame may carry with room for the envelope. */
export const MAX_BODY = 256 * 1024;

export interface RpcReply {
  readonly result?: unknown;
  readonly body?: Uint8Array;
}

/**
 * Handles one request. `from` is authenticated (MAC with the cluster secret; for the
 * operator also its signature, when the server has the operator key), and `params` fit
 * the method's schema when the server has one. Throwing
 * sends the error's `code`, `name` and message back to the caller.
 */
export type RpcHandler = (from: string, method: string, params: Record<string, unknown>, body: Uint8Array) => Promise<RpcReply>;

export interface RpcServerStats {
  frames: FrameStats;
  poisoned: number;
  /** Requests refused before the handler: no envelope, unknown method, params that do not fit. */
  badRequests: number;
  handled: number;
  /** Answers too large for a frame (a handler bug), sent to the caller as EREPLYSIZE errors. */
  oversizedReplies: number;
  /** Connections refused by the channel (see {@link RpcSecurity.onRefused}). */
  refused: number;
  operator: OperatorAuthStats;
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
  readonly #sockets = new Set<NetSocket>();
  readonly #sec: RpcSecurity;
  readonly #net: PlatformNet;
  readonly #clock: Clock;
  readonly #bootAt: number;
  readonly #nonces = new Map<string, number>();
  #lastPrune = -Infinity;
  #server: NetServer | null = null;
  #closed = false;
  readonly stats: RpcServerStats;

  constructor(self: string, sec: RpcSecurity, handler: RpcHandler, env: RpcEnv = {}) {
    this.#self = self;
    this.#sec = sec;
    this.#net = env.net ?? nodeNet;
    this.#clock = env.clock ?? systemClock;
    this.#bootAt = this.#clock.now();
    this.#max = sec.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#codec = new FrameCodec({ vtcs: sec.names, self, mac: sec.mac, maxFrame: this.#max }, this.#bootAt);
    this.#handler = handler;
    this.stats = { frames: this.#codec.stats, poisoned: 0, badRequests: 0, handled: 0, oversizedReplies: 0, refused: 0, operator: { accepted: 0, unsigned: 0, badSignature: 0, stale: 0, replayed: 0 } };
  }

  /** Resolves with the bound port (0 asks the OS); rejects on a bind error (EADDRINUSE...). */
  async listen(host: string, port: number): Promise<number> {
    const server = await this.#net.listen(host, port, (s) => this.#accept(s), (peer, reason) => this.#refused(peer, reason));
    if (this.#closed) {
      await server.close();
      return server.port;
    }
    this.#server = server;
    return server.port;
  }

  #accept(sock: NetSocket): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    this.#sockets.add(sock);
    const split = new FrameSplitter(this.#max);
    sock.setHandlers({
      data: (chunk) => {
        const r = split.push(chunk);
        for (const f of r.frames) this.#frame(sock, f);
        if (r.error !== undefined) {
          this.stats.poisoned++;
          if (r.error === 'oversized') this.stats.frames.rejected.oversized++;
          else this.stats.frames.rejected.malformed++;
          sock.destroy();
        }
      },
      close: () => this.#sockets.delete(sock),
    });
  }

  #refused(peer: string, reason: string): void {
    this.stats.refused++;
    this.#sec.onRefused?.(peer, reason);
  }

  #frame(sock: NetSocket, frame: Uint8Array): void {
    if (sock.destroyed) return;
    const r = this.#codec.open(frame, this.#clock.now());
    if (!r.ok) {
      // An authentic request that looks sent before this server started (a caller whose clock
      // is behind, or this clock stepped back): tell the caller this run, so it binds its retry.
      if (r.announceTo !== undefined && (sock.peerIdentity === undefined || sock.peerIdentity === r.announceTo)) sock.write(this.#codec.announce(r.announceTo, this.#clock.now()));
      return;
    }
    // Over TLS the channel names its peer: a frame from anyone else (a holder of the cluster
    // secret speaking on another's channel) ends the connection.
    if (sock.peerIdentity !== undefined && r.from !== sock.peerIdentity) {
      this.#refused(`TLS peer ${JSON.stringify(sock.peerIdentity)}`, `it sent a frame as ${JSON.stringify(r.from)}: a channel carries only the participant TLS authenticated`);
      sock.destroy();
      return;
    }
    // An announcement only names the caller's run (the codec has learned it).
    if (r.payload.length === 0) return;
    let env: z.infer<typeof envelopeSchema>;
    let body: Uint8Array;
    try {
      const u = unpack(r.payload);
      env = envelopeSchema.parse(u.envelope);
      body = u.body;
    } catch {
      // Without a well-formed envelope there is no id to answer to.
      this.stats.badRequests++;
      return;
    }
    const from = r.from;
    const reply = (e: unknown, b?: Uint8Array): void => {
      if (sock.destroyed) return;
      let frame: Uint8Array;
      try {
        frame = this.#codec.seal(from, pack(e, b), this.#clock.now());
      } catch (err) {
        // An answer too large for a frame is a handler bug: the caller gets it as an error
        // at once rather than waiting out its timeout.
        this.stats.oversizedReplies++;
        const why = { id: env.id, ok: false, e: { code: 'EREPLYSIZE', name: 'RangeError', message: `${env.m}: the answer does not fit a frame (${(err as Error).message})` } };
        try {
          frame = this.#codec.seal(from, pack(why), this.#clock.now());
        } catch {
          return;
        }
      }
      sock.write(frame);
    };
    const fail = (err: unknown): void => {
      const e = err as { name?: unknown; message?: unknown };
      reply({ id: env.id, ok: false, e: { code: codeOf(err), name: typeof e?.name === 'string' ? e.name : 'Error', message: typeof e?.message === 'string' ? e.message : String(err) } });
    };
    const params = env.p ?? {};
    let checked: Record<string, unknown>;
    try {
      if (from === OPERATOR && this.#sec.operatorKey !== undefined) this.#checkOperator(this.#sec.operatorKey, env, params, body);
      checked = this.#checkParams(env.m, params);
    } catch (e) {
      if (e instanceof BadRequestError) this.stats.badRequests++;
      fail(e);
      return;
    }
    this.#handler(from, env.m, checked, body).then((res) => {
      this.stats.handled++;
      reply({ id: env.id, ok: true, r: res.result ?? null }, res.body);
    }, fail);
  }

  /** Throws OperatorAuthError (counted) unless the request carries a fresh, unused operator signature over exactly what it asks. */
  #checkOperator(key: KeyObject, env: z.infer<typeof envelopeSchema>, params: Record<string, unknown>, body: Uint8Array): void {
    const st = this.stats.operator;
    const a = env.a;
    if (a === undefined) {
      st.unsigned++;
      throw new OperatorAuthError('unsigned', `operator request ${env.m} carries no operator signature: the control endpoint needs the operator key (topology: operator.keyFile)`);
    }
    const sig = fromHex(a.s);
    if (sig === null || !edVerify(null, operatorSignedBytes(this.#self, env.m, params, body, a.n, a.t), key, sig)) {
      st.badSignature++;
      throw new OperatorAuthError('bad-signature', `operator request ${env.m}: the signature does not verify with the operator's public key`);
    }
    const now = this.#clock.now();
    const window = this.#sec.operatorWindowMs ?? 30_000;
    // Nonces seen before this server started are gone: a request older than the start could be a replay.
    if (a.t < now - window || a.t > now + window || a.t < this.#bootAt) {
      st.stale++;
      throw new OperatorAuthError('stale', `operator request ${env.m} was signed at ${new Date(a.t).toISOString()}, outside this endpoint's window (${window} ms, not before it started): check the clocks, then retry`);
    }
    if (this.#nonces.has(a.n)) {
      st.replayed++;
      throw new OperatorAuthError('replayed', `operator request ${env.m} was already received (nonce ${a.n}): refused as a replay`);
    }
    this.#nonces.set(a.n, a.t);
    if (now - this.#lastPrune > window) {
      this.#lastPrune = now;
      for (const [n, t] of this.#nonces) if (t < now - window) this.#nonces.delete(n);
    }
    st.accepted++;
  }

  #checkParams(method: string, params: Record<string, unknown>): Record<string, unknown> {
    const methods = this.#sec.methods;
    if (methods === undefined) return params;
    const schema = methods[method];
    if (schema === undefined) throw new BadRequestError(`unknown method ${JSON.stringify(method)} (known: ${Object.keys(methods).join(', ')})`);
    const r = schema.safeParse(params);
    if (!r.success) throw new BadRequestError(`${method}: ${describeIssues(r.error)}`, r.error);
    return r.data as Record<string, unknown>;
  }

  get self(): string {
    return this.#self;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    const s = this.#server;
    this.#server = null;
    if (s !== null) await s.close();
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
  timer: Timer;
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
  readonly #operatorKey: KeyObject | undefined;
  #host: string;
  #port: number;
  readonly #max: number;
  readonly #timeout: number;
  #sock: NetSocket | null = null;
  #connecting: Promise<NetSocket> | null = null;
  readonly #net: PlatformNet;
  readonly #clock: Clock;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  /** Calls waiting for the connection: a call made meanwhile waits behind them (order). */
  #waiting = 0;
  /** Fault injection (scenarios): when set, every call fails as unreachable without touching the network. */
  blocked = false;
  // Several clients may speak as the same participant (two operator shells): a random
  // sub-millisecond offset keeps their (sentAt, counter) pairs apart, so the server's
  // replay filter never mistakes one for the other.
  readonly #skew: number;

  constructor(self: string, to: string, address: { host: string; port: number }, sec: RpcSecurity, timeoutMs = 10_000, env: RpcEnv = {}) {
    this.#net = env.net ?? nodeNet;
    this.#clock = env.clock ?? systemClock;
    this.#skew = (env.random ?? Math.random)() * 0.999;
    this.#to = to;
    this.#host = address.host;
    this.#port = address.port;
    this.#max = sec.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#codec = new FrameCodec({ vtcs: sec.names, self, mac: sec.mac, maxFrame: this.#max }, this.#clock.now());
    this.#timeout = timeoutMs;
    this.#operatorKey = self === OPERATOR ? sec.operatorPrivateKey : undefined;
  }

  get target(): string {
    return this.#to;
  }

  setAddress(address: { host: string; port: number }): void {
    this.#host = address.host;
    this.#port = address.port;
    this.#sock?.destroy();
  }

  #connect(): Promise<NetSocket> {
    if (this.#sock !== null && !this.#sock.destroyed) return Promise.resolve(this.#sock);
    if (this.#connecting !== null) return this.#connecting;
    this.#connecting = new Promise<NetSocket>((resolve, reject) => {
      const sock = this.#net.connect(this.#host, this.#port);
      const split = new FrameSplitter(this.#max);
      let connected = false;
      // An error on an established connection (a reset, a TLS alert) says why it then closed.
      let failure: Error | undefined;
      sock.setHandlers({
        error: (e) => {
          if (connected) {
            failure = e;
            return;
          }
          // A socket replaced while it was dialling (setAddress) no longer speaks for this client.
          if (this.#connecting === p) this.#connecting = null;
          reject(new UnreachableError(`${this.#to} at ${this.#host}:${this.#port}`, e));
        },
        connect: () => {
          connected = true;
          this.#sock = sock;
          if (this.#connecting === p) this.#connecting = null;
          resolve(sock);
        },
        data: (chunk) => {
          const r = split.push(chunk);
          for (const f of r.frames) this.#answer(f);
          if (r.error !== undefined) sock.destroy();
        },
        close: () => {
          if (!connected) {
            if (this.#connecting === p) this.#connecting = null;
            reject(new UnreachableError(`${this.#to} at ${this.#host}:${this.#port} (connection closed before it was established)`));
          }
          if (this.#sock === sock) this.#sock = null;
          for (const [id, q] of this.#pending) {
            this.#pending.delete(id);
            this.#clock.clearTimeout(q.timer);
            q.reject(new UnreachableError(`${this.#to} (connection closed)`, failure));
          }
        },
      });
    });
    const p = this.#connecting;
    return p;
  }

  #answer(frame: Uint8Array): void {
    const r = this.#codec.open(frame, this.#clock.now());
    if (!r.ok) {
      if (r.announceTo === this.#to) this.#sock?.write(this.#codec.announce(this.#to, this.#clock.now()));
      return;
    }
    if (r.from !== this.#to) return;
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
    this.#clock.clearTimeout(p.timer);
    // The body is a view of the frame, which is this answer's alone (FrameSplitter hands out
    // each frame once and never writes to it again): no copy.
    if (env.ok === true) p.resolve({ result: env.r, body });
    else p.reject(new RemoteError(String(env.e?.code ?? 'EUNKNOWN'), String(env.e?.name ?? 'Error'), String(env.e?.message ?? 'remote error')));
  }

  /**
   * Sends a call and resolves with its answer. `o.body` is read only while `call` runs: on an
   * open connection it is sealed into the frame (its one copy on the way out) before `call`
   * returns, and otherwise copied first, so a caller may reuse its buffer at once (the
   * virtual drive hands over the iSCSI target's pooled Data-Out buffer so).
   *
   * Order: calls leave in the order they were made. One made while the connection is being
   * set up waits for it, and every call after it waits behind it, even once the connection
   * is open.
   */
  async call(method: string, params: Record<string, unknown> = {}, o: CallOptions = {}): Promise<{ result: unknown; body: Uint8Array }> {
    if (this.#closed || this.blocked) throw new UnreachableError(this.#to);
    const id = this.#nextId++;
    const ms = o.timeoutMs ?? this.#timeout;
    return new Promise((resolve, reject) => {
      // The timeout covers connecting too: a peer behind a dead link never answers the SYN.
      let expired = false;
      const timer = this.#clock.setTimeout(() => {
        expired = true;
        this.#pending.delete(id);
        reject(new RpcTimeoutError(`${this.#to} (${method})`, ms));
      }, ms);
      const send = (sock: NetSocket, body: Uint8Array | undefined): void => {
        if (expired) return;
        this.#pending.set(id, { resolve, reject, timer });
        try {
          const at = this.#clock.now() + this.#skew;
          const auth = this.#operatorKey === undefined ? undefined : signOperatorRequest(this.#operatorKey, this.#to, method, params, body ?? new Uint8Array(0), at);
          sock.write(this.#codec.seal(this.#to, pack({ id, m: method, p: params, ...(auth === undefined ? {} : { a: auth }) }, body), at));
        } catch (e) {
          this.#pending.delete(id);
          this.#clock.clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      const open = this.#sock;
      if (open !== null && !open.destroyed && this.#waiting === 0) {
        send(open, o.body);
        return;
      }
      // Uint8Array's slice copies (a Buffer's would be a view of the caller's bytes).
      const body = o.body === undefined ? undefined : Uint8Array.prototype.slice.call(o.body);
      this.#waiting++;
      this.#connect().then(
        (sock) => {
          this.#waiting--;
          send(sock, body);
        },
        (e: unknown) => {
          this.#waiting--;
          this.#clock.clearTimeout(timer);
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
