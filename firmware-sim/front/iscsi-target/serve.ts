/**
 * What the CLI's `sim serve --portal` calls: start the target on a portal and hand back
 * a handle. Signal handling belongs to the caller (the CLI), which should call `stop()`
 * on SIGINT and SIGTERM and exit once it resolves; `stop()` closes every connection, so
 * initiators see their commands fail with ECONNRESET rather than hang.
 */
import type { EmulatedTarget } from '../../engine/types.js';
import { startIscsiTarget, type IscsiTargetHandle, type IscsiTargetOptions } from './target.js';

export class PortalError extends Error {
  override readonly name = 'PortalError';
  readonly code = 'EINVAL';
}

/** Splits `host:port` / `[v6]:port` / `host` (port 3260). */
export function parsePortal(portal: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(portal.trim());
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? 3260 : Number(m[3]);
  if (!host || !(port >= 0 && port <= 65535)) throw new PortalError(`portal ${JSON.stringify(portal)} is not host:port`);
  return { host, port };
}

/** Starts serving `target` on `portal`. Rejects with the listen error (EADDRINUSE...). */
export function serveTarget(target: EmulatedTarget, portal: string, opts: Omit<IscsiTargetOptions, 'target' | 'host' | 'port'> = {}): Promise<IscsiTargetHandle> {
  const { host, port } = parsePortal(portal);
  return startIscsiTarget({ ...opts, target, host, port });
}
