/**
 * The small HTTP endpoints of the processes: `GET /metrics` for Prometheus and, on a VTC, the
 * status page. Each listens on the one address it is given (`host:port`, `[v6]:port`) and
 * closes with the process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` or `[v6]:port` (port 0: any free port); throws naming `option` and what was wrong. */
export function parseListenAddress(v: string, option: string): ListenAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(v.trim()) ?? /^([^:[\]\s]+):(\d+)$/.exec(v.trim());
  if (m === null) throw new ListenAddressError(`${option} must be host:port or [v6]:port, e.g. 127.0.0.1:9464 (got "${v}")`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port > 65535) throw new ListenAddressError(`${option} ${v}: the port must be from 0 to 65535`);
  return { host: m[1]!, port };
}

/** A bad listen address; the CLI shows its message as a usage error. */
export class ListenAddressError extends Error {
  override readonly name = 'ListenAddressError';
  readonly code = 'EUSAGE';
}

/** A handler that answers what it knows and returns true, or returns false to leave the request to the next. */
export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

/** An HTTP server listening. */
export interface HttpEndpoint {
  readonly server: Server;
  /** `http://host:port` (no trailing slash). */
  readonly base: string;
  readonly port: number;
  /** Stops listening and drops open connections (event streams included). */
  close(): Promise<void>;
}

/** Answers `GET /metrics` from `registry`. */
export function metricsRoute(registry: Registry): Route {
  return (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET /metrics\n');
      return true;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e instanceof Error ? e.message : String(e)}\n`),
    );
    return true;
  };
}

/** Listening failed; the message names the address and what it was for, `code` is the system's (EADDRINUSE, ...). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly code: string | undefined,
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * Listens on `address` and answers with the first route that takes a request; others get
 * 404 naming `what404` (e.g. "Metrics are at /metrics"). Rejects with a {@link ListenError}
 * naming the address and `what` (e.g. "the metrics (--metrics)").
 */
export async function listenHttp(address: ListenAddress, routes: readonly Route[], what404: string, what = 'HTTP'): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    try {
      for (const r of routes) if (r(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`${what404}\n`);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the address is in use (another process listens there)' : e.code === 'EADDRNOTAVAIL' ? 'no interface of this machine has that address' : e.code === 'EACCES' ? 'not allowed (a port below 1024 needs privileges)' : e.message;
      fail(new ListenError(e.code, `cannot serve ${what} on ${host}:${address.port}: ${why}`, e));
    });
    server.listen(address.port, address.host, () => {
      server.removeAllListeners('error');
      ok();
    });
  });
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : address.port;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    base: `http://${host}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      })),
  };
}
