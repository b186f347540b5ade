/**
 * A simulated network of stream sockets ({@link PlatformNet}) between the processes of
 * {@link SimOs}: the bytes the production code writes arrive in order, whole, after a
 * seeded delay, through the scheduler. It carries TCP-like streams, so it never loses,
 * duplicates or reorders bytes within a connection; faults are what TCP shows instead:
 *
 * - a dial that cannot get through (`blockDial`, directional: a can dial b while b cannot
 *   dial a, as with a one-way firewall rule) hangs, then fails as a connect timeout; the
 *   connections it already had in that direction are reset;
 * - a stalled direction (`stall`) holds bytes until it is released (TCP retransmitting
 *   through a black hole), or until the connection is reset: requests that reached a VTS
 *   whose answers never come back;
 * - connection resets at any time (`reset`), extra delay per link (`slow`);
 * - a crashed process's peers see a reset at once; a power-lost host answers nothing: its
 *   peers' bytes vanish until it is back, when the next one gets a reset (RST for an
 *   unknown connection), and dials to it time out.
 *
 * Frames between VTCs travel on one connection per direction (TcpTransport), so message
 * loss, duplication and reordering between VTCs come from resets (frames lost with the
 * connection) and from the protocol's own retries, not from the carrier.
 */
import type { NetServer, NetSocket, PlatformNet, SocketHandlers } from '../../../src/platform/net.js';
import type { Random } from '../../../src/ptp/random.js';
import type { SimOs, SimProcess } from './sim-os.js';

export interface SimNetOptions {
  /** One-way delay bounds in ms. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** How long a dial that gets no answer waits before it fails (ms). */
  readonly connectTimeout: number;
}

export const DEFAULT_NET: SimNetOptions = { minDelay: 0.2, maxDelay: 3, connectTimeout: 1000 };

export interface SimNetStats {
  connects: number;
  refused: number;
  timedOut: number;
  resets: number;
  bytes: number;
  stalledWrites: number;
}

const ek = (a: string, b: string): string => `${a}>${b}`;

class Conn {
  readonly id: number;
  /** [client end, server end] */
  readonly ends: [SimSocket, SimSocket];
  constructor(id: number, client: SimSocket, server: SimSocket) {
    this.id = id;
    this.ends = [client, server];
  }
}

class SimSocket implements NetSocket {
  readonly net: SimNet;
  readonly proc: SimProcess;
  readonly inc: number;
  peer: SimSocket | null = null;
  conn: Conn | null = null;
  handlers: SocketHandlers = {};
  destroyed = false;
  connected = false;
  /** Bytes written before the connection was up (node buffers them too). */
  readonly early: Uint8Array[] = [];
  /** When the last chunk this end sent is due at the peer: later chunks never overtake it. */
  lastDue = 0;
  /** Chunks held by a stall of this direction. */
  readonly held: Uint8Array[] = [];
  closedReported = false;

  constructor(net: SimNet, proc: SimProcess) {
    this.net = net;
    this.proc = proc;
    this.inc = proc.incarnation;
  }
  setHandlers(h: SocketHandlers): void {
    this.handlers = h;
  }
  write(data: Uint8Array): void {
    if (this.destroyed) return;
    const copy = data.slice();
    if (!this.connected) {
      this.early.push(copy);
      return;
    }
    this.net.transmit(this, copy);
  }
  destroy(): void {
    if (this.destroyed) return;
    this.net.teardown(this, true);
  }
}

/** One network for the whole simulated world; {@link SimNet.platform} gives each process its view. */
export class SimNet {
  readonly #os: SimOs;
  readonly #rng: Random;
  options: SimNetOptions;
  readonly #listeners = new Map<string, { proc: SimProcess; inc: number; accept: (s: NetSocket) => void }>();
  readonly #blocked = new Set<string>();
  readonly #stalled = new Set<string>();
  readonly #slow = new Map<string, number>();
  readonly #conns = new Set<Conn>();
  #nextConn = 1;
  /** Processes whose host has lost power: nothing answers for them. */
  readonly #dark = new Set<string>();
  readonly stats: SimNetStats = { connects: 0, refused: 0, timedOut: 0, resets: 0, bytes: 0, stalledWrites: 0 };

  constructor(os: SimOs, rng: Random, options: SimNetOptions = DEFAULT_NET) {
    this.#os = os;
    this.#rng = rng;
    this.options = options;
  }

  /** The network as process `proc` sees it (addresses are `host:port` strings; the host is ignored beyond the key). */
  platform(proc: SimProcess): PlatformNet {
    return {
      listen: (host, port, onConnection) => this.#listen(proc, host, port, onConnection),
      connect: (host, port) => this.#connect(proc, host, port),
    };
  }

  #delay(from: string, to: string): number {
    const { minDelay, maxDelay } = this.options;
    return minDelay + this.#rng.next() * (maxDelay - minDelay) + (this.#slow.get(ek(from, to)) ?? 0);
  }

  #listen(proc: SimProcess, host: string, port: number, accept: (s: NetSocket) => void): Promise<NetServer> {
    const key = `${host}:${port}`;
    const l = this.#listeners.get(key);
    if (l !== undefined && l.proc.alive && l.proc.incarnation === l.inc) {
      const e = Object.assign(new Error(`listen EADDRINUSE: address already in use ${key}`), { code: 'EADDRINUSE' });
      return Promise.reject(e);
    }
    const me = { proc, inc: proc.incarnation, accept };
    this.#listeners.set(key, me);
    return Promise.resolve({
      port,
      close: () => {
        if (this.#listeners.get(key) === me) this.#listeners.delete(key);
        return Promise.resolve();
      },
    });
  }

  #live(p: SimProcess, inc: number): boolean {
    return p.alive && p.incarnation === inc;
  }

  #connect(proc: SimProcess, host: string, port: number): NetSocket {
    const s = new SimSocket(this, proc);
    const key = `${host}:${port}`;
    this.stats.connects++;
    const l = this.#listeners.get(key);
    const target = l?.proc.name ?? key;
    const fail = (why: 'refused' | 'timeout'): void => {
      if (s.destroyed) return;
      if (why === 'refused') this.stats.refused++;
      else this.stats.timedOut++;
      const code = why === 'refused' ? 'ECONNREFUSED' : 'ETIMEDOUT';
      s.destroyed = true;
      this.#os.post(proc, this.#os.sched.now(), () => {
        s.handlers.error?.(Object.assign(new Error(`connect ${code} ${key}`), { code }));
        this.#reportClose(s);
      });
    };
    const d = this.#delay(proc.name, target);
    const now = this.#os.sched.now();
    // The SYN: unanswered when the way is blocked or the host is dark; refused when nothing listens.
    if (this.#blocked.has(ek(proc.name, target)) || this.#blocked.has(ek(target, proc.name)) || this.#dark.has(target)) {
      this.#os.sched.at(now + this.options.connectTimeout, () => fail('timeout'));
      return s;
    }
    this.#os.sched.at(now + d, () => {
      const l2 = this.#listeners.get(key);
      if (this.#dark.has(target)) {
        this.#os.sched.at(now + this.options.connectTimeout, () => fail('timeout'));
        return;
      }
      if (l2 === undefined || !this.#live(l2.proc, l2.inc)) {
        this.#os.sched.at(this.#os.sched.now() + d, () => fail('refused'));
        return;
      }
      if (s.destroyed) return;
      const srv = new SimSocket(this, l2.proc);
      const c = new Conn(this.#nextConn++, s, srv);
      s.peer = srv;
      srv.peer = s;
      s.conn = c;
      srv.conn = c;
      this.#conns.add(c);
      srv.connected = true;
      this.#os.post(l2.proc, this.#os.sched.now(), () => {
        if (srv.destroyed) return;
        l2.accept(srv);
      });
      // The SYN-ACK back to the dialler.
      this.#os.sched.at(this.#os.sched.now() + d, () => {
        this.#os.post(proc, this.#os.sched.now(), () => {
          if (s.destroyed) return;
          s.connected = true;
          s.handlers.connect?.();
          for (const b of s.early.splice(0)) this.transmit(s, b);
        });
      });
    });
    return s;
  }

  /** Sends `data` from `s` to its peer, in order after what `s` sent before. */
  transmit(s: SimSocket, data: Uint8Array): void {
    const peer = s.peer;
    if (peer === null) return;
    this.stats.bytes += data.length;
    if (this.#dark.has(peer.proc.name) || !this.#live(peer.proc, peer.inc)) {
      // Sent into a dead connection: a power-lost host drops it; a host back up (or a
      // crashed process's kernel) answers with a reset.
      if (!this.#dark.has(peer.proc.name)) this.#resetLater(s.conn, this.#delay(s.proc.name, peer.proc.name) * 2);
      return;
    }
    if (this.#stalled.has(ek(s.proc.name, peer.proc.name))) {
      this.stats.stalledWrites++;
      s.held.push(data);
      return;
    }
    const now = this.#os.sched.now();
    const due = Math.max(now + this.#delay(s.proc.name, peer.proc.name), s.lastDue);
    s.lastDue = due;
    this.#os.post(peer.proc, due, () => {
      if (peer.destroyed) return;
      peer.handlers.data?.(data);
    });
  }

  #reportClose(s: SimSocket): void {
    if (s.closedReported) return;
    s.closedReported = true;
    s.handlers.close?.();
  }

  /** Ends `s`'s connection: `s` closes now; its peer sees the FIN/RST after a delay. */
  teardown(s: SimSocket, local: boolean): void {
    s.destroyed = true;
    const c = s.conn;
    if (c !== null) this.#conns.delete(c);
    if (local) this.#os.post(s.proc, this.#os.sched.now(), () => this.#reportClose(s));
    const peer = s.peer;
    if (peer !== null && !peer.destroyed) {
      const at = Math.max(this.#os.sched.now() + this.#delay(s.proc.name, peer.proc.name), s.lastDue);
      this.#os.post(peer.proc, at, () => {
        if (peer.destroyed) return;
        peer.destroyed = true;
        this.#reportClose(peer);
      });
    }
  }

  #resetLater(c: Conn | null, ms: number): void {
    if (c === null) return;
    this.#os.sched.at(this.#os.sched.now() + ms, () => this.#reset(c));
  }

  /** Both ends see the connection close (each in its own process, if still alive). */
  #reset(c: Conn): void {
    if (!this.#conns.has(c)) return;
    this.#conns.delete(c);
    this.stats.resets++;
    for (const e of c.ends) {
      if (e.destroyed) continue;
      e.destroyed = true;
      this.#os.post(e.proc, this.#os.sched.now(), () => this.#reportClose(e));
    }
  }

  /** Every connection with an end in `name`. */
  #connsOf(name: string): Conn[] {
    return [...this.#conns].filter((c) => c.ends[0].proc.name === name || c.ends[1].proc.name === name);
  }

  // ------------------------------------------------------------------ faults

  /** `a` can no longer dial `b` (one way); connections `a` dialled to `b` are reset. */
  blockDial(a: string, b: string): void {
    this.#blocked.add(ek(a, b));
    for (const c of [...this.#conns]) if (c.ends[0].proc.name === a && c.ends[1].proc.name === b) this.#resetLater(c, this.options.connectTimeout * this.#rng.next());
  }
  /** Both ways. */
  cut(a: string, b: string): void {
    this.blockDial(a, b);
    this.blockDial(b, a);
  }
  /** Bytes from `a` to `b` are held until {@link release} (or a reset). */
  stall(a: string, b: string): void {
    this.#stalled.add(ek(a, b));
  }
  slow(a: string, b: string, extraMs: number): void {
    if (extraMs <= 0) this.#slow.delete(ek(a, b));
    else this.#slow.set(ek(a, b), extraMs);
  }
  /** Resets every connection between `a` and `b` (both directions of dialling). */
  reset(a: string, b: string): void {
    for (const c of [...this.#conns]) {
      const x = c.ends[0].proc.name;
      const y = c.ends[1].proc.name;
      if ((x === a && y === b) || (x === b && y === a)) this.#reset(c);
    }
  }
  /** Lifts every block, stall and slowness; held bytes go on in order. */
  heal(): void {
    this.#blocked.clear();
    this.#slow.clear();
    const stalled = [...this.#stalled];
    this.#stalled.clear();
    if (stalled.length === 0) return;
    for (const c of [...this.#conns])
      for (const e of c.ends) {
        const held = e.held.splice(0);
        for (const b of held) this.transmit(e, b);
      }
  }
  blocked(a: string, b: string): boolean {
    return this.#blocked.has(ek(a, b));
  }

  /** Process `name` crashed (its kernel lives on): its connections reset at its peers. */
  processCrashed(name: string): void {
    for (const c of this.#connsOf(name)) this.#reset(c);
    for (const [k, l] of this.#listeners) if (l.proc.name === name) this.#listeners.delete(k);
  }
  /** The host of `name` lost power: its peers hear nothing (their bytes vanish) until it is back. */
  powerLost(name: string): void {
    this.#dark.add(name);
    for (const [k, l] of this.#listeners) if (l.proc.name === name) this.#listeners.delete(k);
    // Its own ends are gone with it; the peers' ends stay half-open.
    for (const c of this.#connsOf(name)) for (const e of c.ends) if (e.proc.name === name) e.destroyed = true;
  }
  /** The host is back: half-open connections to it reset on their next bytes. */
  powerBack(name: string): void {
    this.#dark.delete(name);
  }
}
