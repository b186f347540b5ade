/**
 * Stream sockets as the VTC and VTS code sees them: listen on an address, connect to one,
 * bytes in order both ways. Production uses node:net ({@link nodeNet}); the simulation
 * (test/sim/prod) delivers the same bytes through its seeded scheduler, with partitions,
 * delays and connection resets, so the code above runs unchanged in both.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/** What a socket reports. `connect` only for a socket made by {@link PlatformNet.connect}. */
export interface SocketHandlers {
  connect?(): void;
  data?(chunk: Uint8Array): void;
  /** A network error; `close` follows. */
  error?(e: Error): void;
  /** The connection ended (reset, closed by either side, or never established after `error`). Called once. */
  close?(): void;
}

/**
 * One end of a byte stream. `write` never throws for network trouble (a dead connection
 * loses the bytes and reports `error`/`close`); `destroy` closes at once, dropping what is
 * unsent. Handlers are set once, before any event can arrive.
 */
export interface NetSocket {
  write(data: Uint8Array): void;
  destroy(): void;
  readonly destroyed: boolean;
  setHandlers(h: SocketHandlers): void;
}

export interface NetServer {
  /** The bound port (the one asked for, or the one picked for port 0). */
  readonly port: number;
  /** Stops accepting; open connections are the caller's to destroy. */
  close(): Promise<void>;
}

/**
 * Error: `listen` rejects on a bind error (EADDRINUSE...); `connect` never throws, a refused
 * or unreachable peer reports `error` then `close`. Timeout: none here (callers put their own).
 */
export interface PlatformNet {
  listen(host: string, port: number, onConnection: (s: NetSocket) => void): Promise<NetServer>;
  connect(host: string, port: number): NetSocket;
}

class NodeSocket implements NetSocket {
  readonly #s: Socket;
  constructor(s: Socket, client: boolean) {
    this.#s = s;
    s.setNoDelay(true);
    if (!client) s.on('error', () => undefined);
  }
  get destroyed(): boolean {
    return this.#s.destroyed;
  }
  write(data: Uint8Array): void {
    if (!this.#s.destroyed) this.#s.write(data);
  }
  destroy(): void {
    this.#s.destroy();
  }
  setHandlers(h: SocketHandlers): void {
    const s = this.#s;
    s.removeAllListeners('error');
    s.on('error', (e: Error) => h.error?.(e));
    if (h.connect !== undefined) s.once('connect', () => h.connect?.());
    s.on('data', (chunk: Buffer) => h.data?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    s.once('close', () => h.close?.());
  }
}

/** TCP over node:net. */
export const nodeNet: PlatformNet = {
  listen(host, port, onConnection) {
    return new Promise((resolve, reject) => {
      const server: Server = createServer((s) => onConnection(new NodeSocket(s, false)));
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve({ port: typeof a === 'object' && a !== null ? a.port : port, close: () => new Promise<void>((r) => server.close(() => r())) });
      });
    });
  },
  connect(host, port) {
    const s = createConnection({ host, port });
    // Until handlers are set an early error must not crash the process.
    s.on('error', () => undefined);
    return new NodeSocket(s, true);
  },
};
