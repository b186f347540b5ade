/**
 * Stream sockets as the VTC and VTS code sees them: listen on an address, connect to one,
 * bytes in order both ways. Production uses node:net ({@link nodeNet}), or node:tls
 * ({@link tlsNet}) when the topology asks for TLS; the simulation (test/sim/prod) delivers
 * the same bytes through its seeded scheduler, with partitions, delays and connection
 * resets, so the code above runs unchanged in all three.
 */
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import type { ConnectionOptions, TlsOptions, TLSSocket } from 'node:tls';

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
  /**
   * Server side of a TLS connection: who the channel authenticated (the PSK identity the
   * client sent, or the common name of its certificate). Undefined without TLS.
   */
  readonly peerIdentity?: string;
}

export interface NetServer {
  /** The bound port (the one asked for, or the one picked for port 0). */
  readonly port: number;
  /** Stops accepting; open connections are the caller's to destroy. */
  close(): Promise<void>;
}

/**
 * Why a connection was refused before it carried anything: `peer` is `address:port` (with
 * the identity it claimed, when known), `reason` a sentence for the log.
 */
export type RefusedHandler = (peer: string, reason: string) => void;

/**
 * Error: `listen` rejects on a bind error (EADDRINUSE...); `connect` never throws, a refused
 * or unreachable peer reports `error` then `close`. `onRefused`, when given, hears of every
 * connection the listener dropped before handing it over (a failed TLS handshake, a TLS
 * client on a plain endpoint). Timeout: none here (callers put their own).
 */
export interface PlatformNet {
  listen(host: string, port: number, onConnection: (s: NetSocket) => void, onRefused?: RefusedHandler): Promise<NetServer>;
  connect(host: string, port: number): NetSocket;
}

/** A TLS record header (handshake or alert, SSL 3.0 to TLS 1.3): how a TLS client's first bytes look to a plain endpoint. */
function looksLikeTls(chunk: Uint8Array): boolean {
  return chunk.length >= 3 && (chunk[0] === 0x16 || chunk[0] === 0x15) && chunk[1] === 0x03 && chunk[2]! <= 0x04;
}

const peerOf = (s: Socket): string => `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;

class NodeSocket implements NetSocket {
  readonly #s: Socket;
  readonly #connectEvent: 'connect' | 'secureConnect';
  /** Plain server socket: a TLS ClientHello as first bytes is refused and reported here. */
  readonly #sniff: RefusedHandler | undefined;
  readonly peerIdentity: string | undefined;
  /** TLS client: `host:port` and the mode, to say why a handshake failed. */
  readonly #handshake: { readonly with: string; readonly psk: boolean } | undefined;
  #secure = false;
  #received = false;
  #failed = false;
  #ended = false;
  constructor(s: Socket, client: boolean, o: { sniff?: RefusedHandler; peerIdentity?: string; handshake?: { with: string; psk: boolean } } = {}) {
    this.#s = s;
    this.#handshake = o.handshake;
    this.#connectEvent = o.handshake === undefined ? 'connect' : 'secureConnect';
    this.#sniff = o.sniff;
    this.peerIdentity = o.peerIdentity;
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
    this.#ended = true;
    this.#s.destroy();
  }
  setHandlers(h: SocketHandlers): void {
    const s = this.#s;
    s.removeAllListeners('error');
    s.on('error', (e: Error) => {
      const hs = this.#handshake;
      // Before the handshake ends, and for an OpenSSL error (an alert) after it, say what TLS saw.
      const tls = hs !== undefined && (!this.#secure || String((e as { code?: unknown }).code).startsWith('ERR_SSL'));
      this.#failed = true;
      h.error?.(tls ? new TlsError(`TLS ${this.#secure ? '' : 'handshake '}with ${hs.with} failed: ${describeTlsFailure(e, hs.psk)}`, e) : e);
    });
    s.once(this.#connectEvent, () => {
      this.#secure = true;
      h.connect?.();
    });
    let first = this.#sniff !== undefined;
    s.on('data', (chunk: Buffer) => {
      this.#received = true;
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (first) {
        first = false;
        if (looksLikeTls(bytes)) {
          this.#sniff?.(peerOf(s), 'the client speaks TLS but this endpoint is plain TCP: give every process the same `tls` section of the topology');
          s.destroy();
          return;
        }
      }
      h.data?.(bytes);
    });
    s.once('close', () => {
      // A server checks a client's certificate once the handshake is over for the client
      // (TLS 1.3), and drops it without an alert: a new connection closed by the peer before
      // any answer is most likely that.
      const hs = this.#handshake;
      if (hs !== undefined && this.#secure && !this.#received && !this.#failed && !this.#ended) {
        h.error?.(new TlsError(`TLS with ${hs.with}: the server closed the connection before any answer: it may have refused this end's ${hs.psk ? 'identity' : 'certificate'} (its log says why)`));
      }
      h.close?.();
    });
  }
}

/** TCP over node:net. */
export const nodeNet: PlatformNet = {
  listen(host, port, onConnection, onRefused) {
    return new Promise((resolve, reject) => {
      const server: Server = createServer((s) => onConnection(new NodeSocket(s, false, onRefused === undefined ? {} : { sniff: onRefused })));
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

/** The pre-shared-key cipher suite: TLS 1.2, AES-256-GCM, no certificates. */
export const PSK_CIPHER = 'PSK-AES256-GCM-SHA384';
/** The shortest pre-shared key accepted, in bytes. */
export const MIN_PSK_BYTES = 32;

/** TLS with a pre-shared key (TLS 1.2, {@link PSK_CIPHER}). */
export interface TlsPsk {
  /** At least {@link MIN_PSK_BYTES} bytes, the same at both ends. */
  readonly psk: Uint8Array;
  /** Client: the identity it sends (its own participant name, e.g. `vtc1`, `operator`). */
  readonly identity: string;
  /** Server: the identities it accepts (the participants of the PtP system); others are refused. Default: any. */
  readonly accept?: readonly string[];
}

/** TLS with X.509 certificates, mutual: each end shows a certificate the other verifies against `ca`. */
export interface TlsCertificates {
  /** PEM of the certificate authority both ends trust. */
  readonly ca: string | Uint8Array;
  /** PEM of this end's certificate (its common name is its participant name) and its private key. */
  readonly cert: string | Uint8Array;
  readonly key: string | Uint8Array;
  /** Client: the name the server's certificate must carry (a subjectAltName DNS entry), e.g. `vts-A`. */
  readonly servername?: string;
  /** Server: the common names of client certificates it accepts; others are refused. Default: any the CA signed. */
  readonly accept?: readonly string[];
}

export type TlsSettings = TlsPsk | TlsCertificates;

/** A TLS handshake failed: a wrong key or certificate, or a peer without TLS. */
export class TlsError extends Error {
  override readonly name = 'TlsError';
  readonly code = 'ETLS';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** The reason OpenSSL gives (`...:SSL routines:fn:wrong version number:...` -> `wrong version number`). */
function opensslReason(e: Error): string {
  const m = /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(e.message);
  return (m?.[1] ?? e.message).trim();
}

/** A handshake error in words an operator can act on, with OpenSSL's code and reason after it. */
export function describeTlsFailure(e: Error, psk: boolean): string {
  const code = (e as { code?: unknown }).code;
  const c = typeof code === 'string' ? code : '';
  let hint: string;
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|RECORD_LENGTH/.test(c)) hint = 'the peer does not speak TLS (plain TCP): give every process the same `tls` section of the topology';
  else if (/UNKNOWN_PSK_IDENTITY|PSK_IDENTITY/.test(c)) hint = 'the server does not know this PSK identity';
  else if (/BAD_RECORD_MAC|CIPHER_OPERATION_FAILED|DECRYPT/.test(c)) hint = psk ? 'the pre-shared keys differ' : 'the peer could not decrypt (wrong key)';
  else if (/NO_SHARED_CIPHER|NO_CIPHERS|HANDSHAKE_FAILURE|NO_SUITABLE|VERSION_TOO_LOW|UNSUPPORTED_PROTOCOL/.test(c)) hint = 'no common cipher: one end uses a pre-shared key and the other certificates (or no TLS)';
  else if (/CERT|ALTNAME|UNABLE_TO_|SELF_SIGNED|UNKNOWN_CA|PEER_DID_NOT_RETURN/.test(c)) hint = 'the certificate was not accepted';
  else if (/ECONNRESET|EPIPE/.test(c)) hint = 'the peer closed the connection during the handshake (it may not speak TLS, or it refused this end\'s key or certificate)';
  else hint = 'the handshake failed';
  return `${hint} (${c === '' ? e.name : c}: ${opensslReason(e)})`;
}

function commonName(s: TLSSocket): string | undefined {
  const cn = (s.getPeerCertificate() as { subject?: { CN?: unknown } } | null)?.subject?.CN;
  return typeof cn === 'string' ? cn : Array.isArray(cn) && typeof cn[0] === 'string' ? cn[0] : undefined;
}

/**
 * Sockets over node:tls: the same contract as {@link nodeNet}, with every byte encrypted
 * and the channel authenticated by a pre-shared key or by certificates (mutual). A server
 * refuses, and reports to `onRefused`, any client whose handshake fails: a wrong key or
 * certificate, an unknown identity, or a client without TLS. A client's failed handshake
 * reports a {@link TlsError} saying why, then `close`. Unlike {@link nodeNet}, a server's
 * `close` also ends the connections it still has: those in their handshake belong to no
 * caller yet (node's default handshake timeout is 120 s).
 */
export function tlsNet(t: TlsSettings): PlatformNet {
  const psk = 'psk' in t;
  if (psk && t.psk.length < MIN_PSK_BYTES) throw new TlsError(`the pre-shared key has ${t.psk.length} bytes: at least ${MIN_PSK_BYTES} are needed`);
  const accept = t.accept === undefined ? null : new Set(t.accept);
  const key = psk ? Buffer.from(t.psk) : null;
  const common = psk ? { ciphers: PSK_CIPHER, minVersion: 'TLSv1.2' as const, maxVersion: 'TLSv1.2' as const } : { minVersion: 'TLSv1.2' as const, ca: Buffer.from(t.ca), cert: Buffer.from(t.cert), key: Buffer.from(t.key) };
  return {
    listen(host, port, onConnection, onRefused) {
      // The identity a PSK client sent, for the log when its handshake then fails.
      const claimed = new WeakMap<object, string>();
      const options: TlsOptions = psk
        ? {
            ...common,
            pskCallback: (sock, identity) => {
              claimed.set(sock, identity);
              return accept === null || accept.has(identity) ? key : null;
            },
          }
        : // Checked below, so that the log says why a certificate was refused.
          { ...common, requestCert: true, rejectUnauthorized: false };
      return new Promise((resolve, reject) => {
        const server = createTlsServer(options, (s) => {
          const identity = psk ? claimed.get(s) : commonName(s);
          const refuse = (why: string): void => {
            s.on('error', () => undefined);
            onRefused?.(`${peerOf(s)}${identity === undefined ? '' : ` (certificate ${JSON.stringify(identity)})`}`, why);
            s.destroy();
          };
          if (!psk && !s.authorized) {
            const why = s.authorizationError;
            refuse(`its certificate was not accepted: ${why === undefined || why === null ? 'it sent none' : String(why)} (client certificates must be signed by the topology's tls.ca)`);
            return;
          }
          if (!psk && accept !== null && (identity === undefined || !accept.has(identity))) {
            refuse(`its certificate's common name ${JSON.stringify(identity ?? '')} is not a participant of this PtP system`);
            return;
          }
          onConnection(new NodeSocket(s, false, identity === undefined ? {} : { peerIdentity: identity }));
        });
        // Connections still in their handshake belong to no caller yet: `close` ends them.
        const raw = new Set<Socket>();
        let closing = false;
        server.on('connection', (r: Socket) => {
          raw.add(r);
          r.once('close', () => raw.delete(r));
        });
        server.on('tlsClientError', (e, s) => {
          if (closing) return;
          const id = claimed.get(s);
          const peer = `${peerOf(s)}${id === undefined ? '' : ` (identity ${JSON.stringify(id)})`}`;
          if (psk && id !== undefined && accept !== null && !accept.has(id)) onRefused?.(peer, `unknown PSK identity ${JSON.stringify(id)}: not a participant of this PtP system`);
          else onRefused?.(peer, `TLS handshake failed: ${describeTlsFailure(e, psk)}`);
        });
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address();
          resolve({
            port: typeof a === 'object' && a !== null ? a.port : port,
            close: () =>
              new Promise<void>((r) => {
                closing = true;
                server.close(() => r());
                for (const c of raw) c.destroy();
              }),
          });
        });
      });
    },
    connect(host, port) {
      const options: ConnectionOptions = psk
        ? { ...common, host, port, pskCallback: () => ({ psk: key!, identity: t.identity }), checkServerIdentity: () => undefined }
        : { ...common, host, port, ...(t.servername === undefined ? {} : { servername: t.servername }) };
      const s = tlsConnect(options);
      s.on('error', () => undefined);
      return new NodeSocket(s, true, { handshake: { with: `${host}:${port}`, psk } });
    },
  };
}
