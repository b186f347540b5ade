/**
 * A real TCP carrier for frames between VTCs (node:net). Each VTC listens on its own
 * address and dials its peers lazily; frames travel length-prefixed and are checked by the
 * SecureChannel above, so this layer authenticates nothing and trusts nothing.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
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
  readonly #out = new Map<string, Socket>();
  readonly #in = new Set<Socket>();
  readonly #maxFrame: number;
  #server: Server | null = null;
  #handler: (frame: Uint8Array) => void = () => undefined;
  #closed = false;

  constructor(peers: readonly TcpPeer[], maxFrame = DEFAULT_MAX_FRAME) {
    this.#peers = new Map(peers.map((p) => [p.name, p]));
    this.#maxFrame = maxFrame;
  }

  /** Starts listening; resolves with the bound port (0 asks the OS for one). Rejects on a bind error. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => this.#accept(sock));
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.#server = server;
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
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
      sock = createConnection({ host: peer.host, port: peer.port });
      sock.setNoDelay(true);
      this.stats.connects++;
      sock.on('error', () => {
        this.stats.dropped++;
      });
      sock.on('close', () => {
        if (this.#out.get(to) === sock) this.#out.delete(to);
      });
      this.#out.set(to, sock);
    }
    sock.write(frame);
  }

  #accept(sock: Socket): void {
    this.#in.add(sock);
    const splitter = new FrameSplitter(this.#maxFrame);
    sock.on('data', (chunk: Buffer) => {
      const r = splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      for (const f of r.frames) this.#handler(f);
      if (r.error !== undefined) {
        // A length we refuse leaves the stream unsynchronised: drop the connection.
        this.stats.poisoned++;
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.#in.delete(sock));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of [...this.#out.values(), ...this.#in]) s.destroy();
    this.#out.clear();
    this.#in.clear();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
  }
}
