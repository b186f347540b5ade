/**
 * A real TCP carrier for frames between VTCs (node:net). Each VTC listens on its own
 * address and dials its peers lazily; frames travel length-prefixed and are checked by the
 * SecureChannel above, so this layer authenticates nothing and trusts nothing. The sockets
 * come from a {@link PlatformNet} (node:net by default; the simulation passes its own).
 */
import { nodeNet } from '../platform/net.js';
import type { NetServer, NetSocket, PlatformNet } from '../platform/net.js';
import { DEFAULT_MAX_FRAME, FrameSplitter } from './frame.js';
import type { RawTransport } from './transport.js';

export interface TcpPeer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface TcpStats {
  connects: number;
  dropped: number;
  poisoned: number;
}

/**
 * `send` queues on a connection being dialled and drops the frame when the peer cannot
 * be reached (the protocol retries); it never throws for network errors. `close` ends
 * every socket and the listener; frames in flight are lost. There is no per-frame
 * timeout: a dead peer shows as loss, which the protocol's own timers handle.
 */
export class TcpTransport implements RawTransport {
  readonly stats: TcpStats = { connects: 0, dropped: 0, poisoned: 0 };
  readonly #peers: Map<string, TcpPeer>;
  readonly #out = new Map<string, NetSocket>();
  readonly #in = new Set<NetSocket>();
  readonly #maxFrame: number;
  readonly #net: PlatformNet;
  #server: NetServer | null = null;
  #handler: (frame: Uint8Array) => void = () => undefined;
  #closed = false;

  constructor(peers: readonly TcpPeer[], maxFrame = DEFAULT_MAX_FRAME, net: PlatformNet = nodeNet) {
    this.#peers = new Map(peers.map((p) => [p.name, p]));
    this.#maxFrame = maxFrame;
    this.#net = net;
  }

  /** Starts listening; resolves with the bound port (0 asks the OS for one). Rejects on a bind error. */
  async listen(host: string, port: number): Promise<number> {
    const server = await this.#net.listen(host, port, (sock) => this.#accept(sock));
    if (this.#closed) {
      await server.close();
      return server.port;
    }
    this.#server = server;
    return server.port;
  }

  setPeer(peer: TcpPeer): void {
    this.#peers.set(peer.name, peer);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#handler = handler;
  }

  send(to: string, frame: Uint8Array): void {
    if (this.#closed) return;
    let sock = this.#out.get(to);
    if (sock === undefined || sock.destroyed) {
      const peer = this.#peers.get(to);
      if (peer === undefined) {
        this.stats.dropped++;
        return;
      }
      const s = this.#net.connect(peer.host, peer.port);
      this.stats.connects++;
      s.setHandlers({
        error: () => {
          this.stats.dropped++;
        },
        close: () => {
          if (this.#out.get(to) === s) this.#out.delete(to);
        },
      });
      this.#out.set(to, s);
      sock = s;
    }
    sock.write(frame);
  }

  #accept(sock: NetSocket): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    this.#in.add(sock);
    const splitter = new FrameSplitter(this.#maxFrame);
    sock.setHandlers({
      data: (chunk) => {
        const r = splitter.push(chunk);
        for (const f of r.frames) this.#handler(f);
        if (r.error !== undefined) {
          // A length we refuse leaves the stream unsynchronised: drop the connection.
          this.stats.poisoned++;
          sock.destroy();
        }
      },
      close: () => this.#in.delete(sock),
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of [...this.#out.values(), ...this.#in]) s.destroy();
    this.#out.clear();
    this.#in.clear();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await server.close();
  }
}
