/** SendTargets discovery (RFC 7143 appendix C) over a Discovery session. */
import { IscsiSession, type IscsiSessionOptions } from './session.js';
import { SessionType } from './login.js';

export interface DiscoveredTarget {
  readonly name: string;
  /** `host:port,tpgt` strings as the target reported them. */
  readonly addresses: readonly string[];
}

/**
 * Logs in a discovery session, asks `SendTargets=All`, logs out. Rejects with `LoginError`
 * when the portal refuses discovery, `TransportError` on connection trouble or timeout.
 */
export async function discoverTargets(options: Omit<IscsiSessionOptions, 'targetName' | 'sessionType'>): Promise<DiscoveredTarget[]> {
  const session = await IscsiSession.open({ ...options, sessionType: SessionType.discovery });
  try {
    const pairs = await session.text([['SendTargets', 'All']]);
    const out: Array<{ name: string; addresses: string[] }> = [];
    for (const [k, v] of pairs) {
      if (k === 'TargetName') out.push({ name: v, addresses: [] });
      else if (k === 'TargetAddress') out.at(-1)?.addresses.push(v);
    }
    return out;
  } finally {
    await session.close();
  }
}
