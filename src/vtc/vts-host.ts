/**
 * A VTS as a process runs it: the VTS unit over its cache and state directories, served
 * on one address. `crash` drops it the way a power loss does (connections reset, nothing
 * more written); `start` again reopens the same directories and address.
 */
import { pino } from 'pino';
import type { Logger } from 'pino';
import { HmacSha256 } from '../ptp/mac.js';
import { tlsNet } from '../platform/net.js';
import type { TlsSettings } from '../platform/net.js';
import type { VtsName } from '../ptp/types.js';
import { VtsUnit } from '../vts/index.js';
import type { VtsLibraryOptions } from '../vts/index.js';
import { participants } from './rpc.js';
import { VtsServer } from './vts-server.js';
import type { Address } from './agent.js';

export interface VtsHostOptions {
  readonly name: VtsName;
  readonly vtcs: readonly string[];
  readonly secret: string | Uint8Array;
  readonly listen: Address;
  readonly cacheDir: string;
  readonly stateDir: string;
  readonly library?: VtsLibraryOptions;
  readonly logger?: Logger;
  /** Abandon a mount whose VTC has made no call for this long (ms); default MOUNT_OWNER_GONE_MS (vts-server.ts). */
  readonly mountOwnerGoneMs?: number;
  /**
   * Serve over TLS (the topology's `tls` section): only clients completing the handshake with
   * this key or a certificate of the CA are served, as the participant they authenticated as.
   * Absent: plain TCP, and TLS clients are refused.
   */
  readonly tls?: TlsSettings;
}

/**
 * Error: `start` rejects when the directories cannot be opened or the address is taken.
 * Timeout and cancel: none; `stop` waits for running premigrations to finish.
 */
export class VtsHost {
  readonly options: VtsHostOptions;
  readonly log: Logger;
  unit: VtsUnit | null = null;
  #server: VtsServer | null = null;
  port = 0;

  constructor(o: VtsHostOptions) {
    this.options = o;
    this.log = (o.logger ?? pino({ level: process.env.PTPVTS_LOG_LEVEL ?? 'warn' })).child({ component: 'vts', vts: o.name });
  }

  get running(): boolean {
    return this.#server !== null;
  }

  async start(): Promise<number> {
    if (this.#server !== null) return this.port;
    const o = this.options;
    const names = participants(o.vtcs);
    // Before the unit opens: bad TLS settings (a short key) leave nothing to release.
    const env = o.tls === undefined ? {} : { env: { net: tlsNet({ ...o.tls, accept: names }) } };
    const unit = await VtsUnit.open({ id: o.name, cacheDir: o.cacheDir, stateDir: o.stateDir, logger: this.log, ...(o.library === undefined ? {} : { library: o.library }) });
    const server = new VtsServer({ unit, name: o.name, security: { names, mac: new HmacSha256(o.secret) }, logger: this.log, ...(o.mountOwnerGoneMs === undefined ? {} : { ownerGoneMs: o.mountOwnerGoneMs }), ...env });
    try {
      this.port = await server.listen(o.listen.host, this.port !== 0 ? this.port : o.listen.port);
    } catch (e) {
      await unit.shutdown();
      throw e;
    }
    this.unit = unit;
    this.#server = server;
    this.log.info({ port: this.port, inOperation: unit.inOperation, lastKeySeq: unit.lastKeySeq, tls: o.tls === undefined ? 'off' : 'psk' in o.tls ? 'psk' : 'certificates' }, 'VTS serving');
    return this.port;
  }

  /** Drops the VTS like a power loss: the network goes first, then the unit is released. */
  async crash(): Promise<void> {
    const s = this.#server;
    const u = this.unit;
    this.#server = null;
    this.unit = null;
    await s?.close();
    await u?.shutdown();
  }

  /** Clean stop (SIGTERM): same as a crash for the protocol; the unit's state is durable at every step. */
  stop(): Promise<void> {
    return this.crash();
  }

  serverStats(): VtsServer['rpc']['stats'] | null {
    return this.#server?.rpc.stats ?? null;
  }
}
