/**
 * The emulator's iSCSI target: a TCP server that puts every LUN of an emulated target
 * (the engine's `EmulatedTarget`) behind one iSCSI target name. Error recovery level 0,
 * one connection per session, as many sessions as initiators open. Malformed input gets the
 * answer RFC 7143 gives it (Reject, login failure, or a dropped connection) and never
 * touches another session.
 *
 * The server keeps the target-wide state (sessions by ISID, TSIHs, counters, the buffer
 * pool); each connection is a {@link TargetConnection} (connection.ts), whose commands go
 * through the CmdSN window (cmdsn-window.ts) to their tasks (task.ts) and answers
 * (responder.ts); task management is tmf.ts, text requests text.ts, login login.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BufferPool } from '../../../src/iscsi/buffer-pool.js';
import { localParams } from '../../../src/iscsi/negotiate.js';
import { TargetConnection, type TargetContext } from './connection.js';
import type { IscsiTargetHandle, IscsiTargetOptions, IscsiTargetStats } from './options.js';

export function defaultIqn(targetName: string): string {
  return `iqn.2026-11.io.ptpvts:${targetName.toLowerCase().replace(/[^a-z0-9.-]+/g, '-')}`;
}

/** Starts the target. Resolves once it listens. */
export async function startIscsiTarget(options: IscsiTargetOptions): Promise<IscsiTargetHandle> {
  const host = options.host ?? '127.0.0.1';
  const iqn = options.iqn ?? defaultIqn(options.target.name);
  const stats: IscsiTargetStats = { connections: 0, logins: 0, loginFailures: 0, commands: 0, rejects: 0, dropped: 0, pdusIn: 0 };
  const conns = new Set<TargetConnection>();
  const sessions = new Map<string, TargetConnection>();
  let nextTsih = 1;
  const chap = options.chap;
  const secretFor = chap ? (typeof chap.users === 'function' ? chap.users : (n: string) => (Object.hasOwn(chap.users, n) ? (chap.users as Record<string, string>)[n] : undefined)) : undefined;
  const ctx: TargetContext = {
    options,
    commandDone: options.observer?.commandDone?.bind(options.observer),
    iqn,
    stats,
    portal: '',
    pool: new BufferPool(),
    local: localParams({
      maxRecvDataSegmentLength: options.maxRecvDataSegmentLength ?? 262144,
      maxBurstLength: options.maxBurstLength ?? 1048576,
      firstBurstLength: options.firstBurstLength ?? 262144,
      immediateData: options.immediateData ?? true,
      initialR2T: options.initialR2T ?? false,
      headerDigests: options.headerDigests ?? ['CRC32C', 'None'],
      dataDigests: options.dataDigests ?? ['CRC32C', 'None'],
      maxConnections: 1,
      errorRecoveryLevel: 0,
    }),
    chap: secretFor ? { secretFor, ...(chap?.mutual ? { mutual: chap.mutual } : {}) } : undefined,
    allocTsih: () => {
      const t = nextTsih;
      nextTsih = nextTsih >= 0xffff ? 1 : nextTsih + 1;
      return t;
    },
    register: (c) => {
      const key = c.sessionKey();
      const old = sessions.get(key);
      // ERL 0 reinstatement: a new login with the same ISID ends the old session.
      if (old && old !== c) old.drop('session reinstated');
      sessions.set(key, c);
    },
    findSession: (tsih) => [...sessions.values()].find((c) => c.tsih === tsih),
    forget: (c) => {
      conns.delete(c);
      const key = c.sessionKey();
      if (sessions.get(key) === c) sessions.delete(key);
    },
  };
  const server: Server = createServer((socket: Socket) => {
    stats.connections++;
    conns.add(new TargetConnection(socket, ctx));
  });
  server.maxConnections = 1024;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 0);
  ctx.portal = `${host.includes(':') ? `[${host}]` : host}:${port},${options.portalGroupTag ?? 1}`;
  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    iqn,
    stats,
    connectionCount: () => conns.size,
    bufferStats: () => ({ made: ctx.pool.made, reused: ctx.pool.reused }),
    stop: () => {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...conns].map((c) => c.drop('target stopping')));
        await closed;
      })();
      return stopping;
    },
  };
}
