/**
 * The volumes each VTS holds, asked over the VTS's RPC (`volumes`): tokens, sizes and
 * whether a mount holds the volume now. The virtual library asks it before a volume goes
 * into a drive (mounted elsewhere: in use); `ptpvts volumes show` prints it.
 */
import type { KeyObject } from 'node:crypto';
import { HmacSha256 } from '../../ptp/mac.js';
import { VTS_NAMES } from '../../ptp/types.js';
import type { VtsName } from '../../ptp/types.js';
import type { TlsSettings } from '../../platform/net.js';
import { participants, RpcClient, vtsParticipant } from '../rpc.js';
import { vtsTlsNet } from '../vts-client.js';

/** One volume as a VTS lists it (VtsUnit.volumes). */
export interface VtsVolume {
  readonly volser: string;
  readonly token: { readonly generation: number; readonly consistent: boolean };
  readonly dataGeneration: number;
  readonly bytes: number;
  readonly resident: boolean;
  readonly premigrated: boolean;
  readonly mounted: boolean;
}

export interface VtsVolumesOptions {
  /** Who asks: a VTC's name, or `operator` with `operatorKey`. */
  readonly self: string;
  readonly vtcs: readonly string[];
  readonly secret: string | Uint8Array;
  readonly vts: Readonly<Record<VtsName, { readonly host: string; readonly port: number }>>;
  readonly operatorKey?: KeyObject;
  readonly timeoutMs?: number;
  /** Reach the VTS over TLS, as `self` (the topology's `tls` section); absent: plain TCP. */
  readonly tls?: TlsSettings;
}

/**
 * Error: `list` rejects per VTS with the RPC's error (unreachable, timeout, remote); `all`
 * never rejects: a VTS that did not answer is reported with its error's message.
 * Timeout: `timeoutMs` per call (default 2 s). Cancel: none.
 */
export class VtsVolumes {
  readonly #clients: Record<VtsName, RpcClient>;

  constructor(o: VtsVolumesOptions) {
    const sec = { names: participants(o.vtcs), mac: new HmacSha256(o.secret), ...(o.operatorKey === undefined ? {} : { operatorPrivateKey: o.operatorKey }) };
    const t = o.timeoutMs ?? 2000;
    const tls = o.tls;
    const env = (x: VtsName): { net?: ReturnType<typeof vtsTlsNet> } => (tls === undefined ? {} : { net: vtsTlsNet(tls, o.self, x) });
    this.#clients = { A: new RpcClient(o.self, vtsParticipant('A'), o.vts.A, sec, t, env('A')), B: new RpcClient(o.self, vtsParticipant('B'), o.vts.B, sec, t, env('B')) };
  }

  async list(x: VtsName): Promise<VtsVolume[]> {
    return (await this.#clients[x].call('volumes')).result as VtsVolume[];
  }

  async all(): Promise<Record<VtsName, VtsVolume[] | { readonly error: string }>> {
    const out = {} as Record<VtsName, VtsVolume[] | { readonly error: string }>;
    await Promise.all(
      VTS_NAMES.map(async (x) => {
        try {
          out[x] = await this.list(x);
        } catch (e) {
          out[x] = { error: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    return out;
  }

  /** The VTS that reports `volser` mounted (or held by a copy), or null. A VTS that does not answer counts as not holding it. */
  async holder(volser: string): Promise<VtsName | null> {
    const all = await this.all();
    for (const x of VTS_NAMES) {
      const l = all[x];
      if (Array.isArray(l) && l.some((v) => v.volser === volser && v.mounted)) return x;
    }
    return null;
  }

  close(): void {
    for (const x of VTS_NAMES) this.#clients[x].close();
  }
}
