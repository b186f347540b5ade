/**
 * A VTS process's network face: its {@link VtsUnit} served over the authenticated RPC of
 * rpc.ts, so VTCs reach it over TCP. Only configured VTCs may call it (the operator may
 * read its view). Copy streams live as long as the server. Each mount belongs to the VTC
 * that made it, in the run (process start) that made it: a VTC that starts again names its
 * new run on its first calls, and the mounts of its earlier runs are abandoned (nothing they
 * wrote is committed). A mount whose VTC has not called at all for `ownerGoneMs` is abandoned
 * too (docs/vts.md, "Mount ownership").
 */
import type { Logger } from 'pino';
import type { VtsUnit, MountHandle, VolumeExport } from '../vts/index.js';
import { BadRequestError, NotAllowedError } from './errors.js';
import { MAX_BODY, OPERATOR, RpcServer, vtsParticipant } from './rpc.js';
import type { RpcEnv, RpcReply, RpcSecurity } from './rpc.js';
import { systemClock } from '../platform/clock.js';
import type { Clock, Timer } from '../platform/clock.js';

const str = (p: Record<string, unknown>, k: string): string => {
  const v = p[k];
  if (typeof v !== 'string') throw new BadRequestError(`parameter ${k} must be a string`);
  return v;
};
const num = (p: Record<string, unknown>, k: string): number => {
  const v = p[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequestError(`parameter ${k} must be a number`);
  return v;
};
const optNum = (p: Record<string, unknown>, k: string): number | undefined => (p[k] === undefined || p[k] === null ? undefined : num(p, k));
const optStr = (p: Record<string, unknown>, k: string): string | undefined => (p[k] === undefined || p[k] === null ? undefined : str(p, k));
/** The caller's epoch (`epoch`, `epochMac`), when it sent one: the unit refuses what a newer key fenced. */
const fenceOf = (p: Record<string, unknown>): { epoch?: number; epochMac?: string; bootId?: string; minSeq?: number } => {
  const epoch = optNum(p, 'epoch');
  const epochMac = optStr(p, 'epochMac');
  const bootId = optStr(p, 'bootId');
  const minSeq = optNum(p, 'minSeq');
  return { ...(epoch === undefined ? {} : { epoch }), ...(epochMac === undefined ? {} : { epochMac }), ...(bootId === undefined ? {} : { bootId }), ...(minSeq === undefined ? {} : { minSeq }) };
};

/** A queue feeding `applyCopy` as chunks arrive over the network. */
class ChunkQueue implements AsyncIterable<Uint8Array> {
  readonly #items: Uint8Array[] = [];
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  push(c: Uint8Array): void {
    this.#items.push(c);
    this.#wake?.();
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }
  /** Ends the stream with an error: the copy is discarded, never committed short. */
  abort(e: Error): void {
    this.#error = e;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      if (this.#error !== null) throw this.#error;
      const c = this.#items.shift();
      if (c !== undefined) {
        yield c;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
  }
}

const COPY_IDLE_MS = 30_000;
/**
 * Default bound after which a mount whose VTC has made no call at all (its heartbeats
 * included) is abandoned. Generous: a VTC that is only slow or cut off for a while keeps
 * its mounts; a restarted VTC frees its old mounts at once by naming its new run.
 */
export const MOUNT_OWNER_GONE_MS = 10 * 60_000;

/** A call carried the run of a VTC process that has since started again: that process is gone. */
export class StaleRunError extends Error {
  override readonly name = 'StaleRunError';
  readonly code = 'ESTALERUN';
  constructor(
    readonly vtc: string,
    readonly run: string,
    options?: { cause?: unknown },
  ) {
    super(`VTC ${vtc} run ${run} has been replaced by a newer run of that VTC; its mounts were abandoned`, options);
  }
}

/** A mount and who made it. */
interface OwnedMount {
  readonly h: MountHandle;
  /** The VTC that made the mount. */
  readonly vtc: string;
  /** That VTC process's run id; undefined for a caller that sends none (it is bound only by {@link MOUNT_OWNER_GONE_MS}). */
  readonly run: string | undefined;
  /** The VTC's name for the mount, sent with it: a VTC whose mount call got no answer abandons it by this. */
  readonly tag: string | undefined;
  lastUsed: number;
}

/** Tags of mounts abandoned before they were made (the abandon overtook a slow mount), kept this many. */
const ABANDONED_TAGS_KEPT = 1024;
/**
 * A tag is its VTC run's own: a VTC numbers its tags afresh at every start, and a tag its
 * earlier process abandoned must not refuse the new process's mount of the same name.
 */
const abandonedTag = (vtc: string, run: string | undefined, tag: string): string => JSON.stringify([vtc, run ?? null, tag]);

export interface VtsServerOptions {
  readonly unit: VtsUnit;
  /** `A` or `B`. */
  readonly name: string;
  readonly security: RpcSecurity;
  readonly logger: Logger;
  /** Abandon a mount whose VTC has made no call for this long (ms); default {@link MOUNT_OWNER_GONE_MS}. */
  readonly ownerGoneMs?: number;
  readonly now?: () => number;
  /** Sockets and clock (node:net and the real clock by default); `now`, when given, wins over the clock's for mount ownership. */
  readonly env?: RpcEnv;
}

/**
 * Serves one VTS unit. Errors of the unit go back to the caller with their code
 * (EVTSOUT, EFENCED...). No timeouts of its own; `close` drops every connection and
 * aborts nothing on the unit (the caller shuts the unit down).
 */
export class VtsServer {
  readonly rpc: RpcServer;
  readonly #unit: VtsUnit;
  readonly #log: Logger;
  readonly #mounts = new Map<number, OwnedMount>();
  /** The current run of each VTC that named one. */
  readonly #runs = new Map<string, string>();
  /** `vtc run` of runs replaced by a newer one: never current again. */
  readonly #retired = new Set<string>();
  readonly #lastCall = new Map<string, number>();
  readonly #ownerGoneMs: number;
  readonly #now: () => number;
  readonly #sweep: Timer;
  readonly #clock: Clock;
  readonly #exports = new Map<number, { x: VolumeExport; it: AsyncIterator<Uint8Array>; vtc: string; run: string | undefined }>();
  readonly #abandonedTags = new Set<string>();
  readonly #copies = new Map<number, { q: ChunkQueue; done: Promise<unknown>; idle: Timer; idleMs: number; vtc: string; run: string | undefined; volser: string }>();
  #nextId = 1;

  constructor(o: VtsServerOptions) {
    this.#unit = o.unit;
    this.#log = o.logger;
    this.#ownerGoneMs = o.ownerGoneMs ?? MOUNT_OWNER_GONE_MS;
    if (!(this.#ownerGoneMs > 0)) throw new BadRequestError(`ownerGoneMs must be a positive number of ms (got ${String(o.ownerGoneMs)})`);
    const clock = o.env?.clock ?? systemClock;
    this.#clock = clock;
    this.#now = o.now ?? (() => clock.now());
    // A refused connection (failed TLS handshake, TLS on a plain endpoint) is an error in the log, naming the peer and why.
    const security: RpcSecurity = { ...o.security, onRefused: o.security.onRefused ?? ((peer, reason) => this.#log.error({ peer, reason }, `VTS ${o.name} refused a connection from ${peer}: ${reason}`)) };
    this.rpc = new RpcServer(vtsParticipant(o.name), security, (from, m, p, b) => this.#handle(from, m, p, b), o.env);
    this.#sweep = clock.setInterval(() => void this.sweepGoneOwners(), Math.max(10, Math.min(60_000, this.#ownerGoneMs / 4)));
    this.#sweep.unref?.();
  }

  listen(host: string, port: number): Promise<number> {
    return this.rpc.listen(host, port);
  }

  async close(): Promise<void> {
    this.#clock.clearInterval(this.#sweep);
    await this.rpc.close();
    for (const { x } of this.#exports.values()) await x.release();
    this.#exports.clear();
    for (const c of this.#copies.values()) {
      this.#clock.clearTimeout(c.idle);
      c.q.abort(new BadRequestError('VTS server closed during the copy'));
    }
    this.#copies.clear();
  }

  /** A copy whose sender went quiet (crashed VTC, cut link) is dropped so the volume is not held busy. */
  #idle(id: number, q: ChunkQueue, ms: number): Timer {
    return this.#clock.setTimeout(() => {
      this.#copies.delete(id);
      q.abort(new BadRequestError(`copy ${id} abandoned: no data for ${ms} ms`));
    }, ms);
  }

  #h(from: string, p: Record<string, unknown>): MountHandle {
    const m = this.#mounts.get(num(p, 'h'));
    if (m === undefined) throw new BadRequestError(`unknown mount handle ${String(p.h)}`);
    if (m.vtc !== from) throw new BadRequestError(`mount handle ${m.h.id} belongs to VTC ${m.vtc}, not ${from}`);
    m.lastUsed = this.#now();
    return m.h;
  }

  /** Drops a mount through the unit's abandon: what it wrote since the mount is discarded, never committed. */
  async #abandon(m: OwnedMount, why: string): Promise<void> {
    this.#mounts.delete(m.h.id);
    await this.#unit.abandon(m.h);
    this.#log.warn({ h: m.h.id, volser: m.h.volser, vtc: m.vtc, run: m.run, why }, 'mount abandoned');
  }

  /**
   * Notes the run a VTC's call names. A new run of that VTC means its earlier process is
   * gone (one process per VTC directory): the mounts of its other runs are abandoned, and
   * those runs are refused from then on, so a late call of the dead process cannot take
   * the VTC back to it.
   */
  async #noteRun(from: string, run: string | undefined): Promise<void> {
    if (run === undefined) return;
    if (this.#retired.has(`${from} ${run}`)) throw new StaleRunError(from, run);
    const was = this.#runs.get(from);
    if (was === run) return;
    if (was !== undefined) this.#retired.add(`${from} ${was}`);
    this.#runs.set(from, run);
    const old = [...this.#mounts.values()].filter((m) => m.vtc === from && m.run !== undefined && m.run !== run);
    if (was !== undefined || old.length > 0) this.#log.warn({ vtc: from, run, was, mounts: old.length }, 'VTC started again: abandoning the mounts of its earlier runs');
    for (const m of old) {
      this.#retired.add(`${from} ${m.run ?? ''}`);
      await this.#abandon(m, `VTC ${from} started again (run ${run})`);
    }
    // Its earlier runs' copies and exports go too: a copy stream whose sender is gone would
    // hold the volume busy until the idle bound, and nothing would ever commit it.
    for (const [id, c] of this.#copies) {
      if (c.vtc !== from || c.run === undefined || c.run === run) continue;
      this.#copies.delete(id);
      this.#clock.clearTimeout(c.idle);
      c.q.abort(new StaleRunError(from, c.run));
    }
    for (const [id, e] of this.#exports) {
      if (e.vtc !== from || e.run === undefined || e.run === run) continue;
      this.#exports.delete(id);
      await e.x.release();
    }
  }

  /**
   * Abandons the mounts whose VTC has made no call for `ownerGoneMs` and that were not used
   * for as long. Runs on a timer; resolves with the number abandoned.
   */
  async sweepGoneOwners(): Promise<number> {
    const now = this.#now();
    const gone = [...this.#mounts.values()].filter((m) => now - Math.max(m.lastUsed, this.#lastCall.get(m.vtc) ?? 0) >= this.#ownerGoneMs);
    for (const m of gone) await this.#abandon(m, `no call from VTC ${m.vtc} for ${this.#ownerGoneMs} ms`).catch((e: unknown) => this.#log.error({ err: e, h: m.h.id }, 'abandoning a mount failed'));
    return gone.length;
  }

  /** The active mounts and their owners, for tests and status. */
  mountOwners(): { h: number; volser: string; vtc: string; run?: string }[] {
    return [...this.#mounts.values()].map((m) => ({ h: m.h.id, volser: m.h.volser, vtc: m.vtc, ...(m.run === undefined ? {} : { run: m.run }) }));
  }

  #view(): Record<string, unknown> {
    return { ...this.#unit.view(), mounts: this.#unit.activeMounts().length, transfers: this.#exports.size + this.#copies.size, refusing: this.#unit.refusingMounts };
  }

  async #handle(from: string, m: string, p: Record<string, unknown>, body: Uint8Array): Promise<RpcReply> {
    const u = this.#unit;
    if (from === OPERATOR && m !== 'view' && m !== 'volumes') throw new NotAllowedError(from, m);
    if (from.startsWith('vts-')) throw new NotAllowedError(from, m);
    if (from !== OPERATOR) {
      this.#lastCall.set(from, this.#now());
      await this.#noteRun(from, optStr(p, 'run'));
    }
    switch (m) {
      case 'view':
        return { result: this.#view() };
      case 'volumes':
        return { result: u.volumes() };
      case 'fence':
        u.checkFence(fenceOf(p));
        return { result: this.#view() };
      case 'tokens':
        // A reader with an epoch learns the tokens only if no newer key fenced it here.
        if (p.epoch !== undefined) u.checkFence(fenceOf(p));
        return { result: u.volumes().map((v) => ({ volser: v.volser, generation: v.token.generation, consistent: v.token.consistent, dataGeneration: v.dataGeneration })) };
      case 'record':
        if (u.inOperation) await u.recordKey(num(p, 'seq'), optStr(p, 'mac') ?? '');
        return { result: this.#view() };
      case 'set-in':
        await u.setInOperation(p.seq === undefined ? {} : { seq: num(p, 'seq'), ...(optStr(p, 'mac') === undefined ? {} : { mac: str(p, 'mac') }) });
        u.refuseNewMounts(false);
        this.#log.info({ from, seq: p.seq }, 'put in operation');
        return { result: this.#view() };
      case 'set-out':
        await u.setOutOfOperation({ seq: num(p, 'seq'), ...(optStr(p, 'mac') === undefined ? {} : { mac: str(p, 'mac') }), reason: typeof p.reason === 'string' ? p.reason : `taken out by ${from}` });
        this.#log.info({ from, seq: p.seq }, 'taken out of operation');
        return { result: this.#view() };
      case 'refuse':
        u.refuseNewMounts(p.refuse === true);
        return { result: this.#view() };
      case 'abort':
        return { result: { aborted: await u.abortMounts(typeof p.reason === 'string' ? p.reason : `aborted by ${from}`) } };
      case 'mark-behind':
        return { result: await u.markBehind(str(p, 'volser'), num(p, 'generation'), fenceOf(p), { write: p.write === true }) };
      case 'mount': {
        const run = optStr(p, 'run');
        const tag = optStr(p, 'tag');
        // Once refused, the tag is done with: the VTC sends each tag with one mount call only.
        if (tag !== undefined && this.#abandonedTags.delete(abandonedTag(from, run, tag))) throw new BadRequestError(`mount ${tag} of VTC ${from} was abandoned already`);
        const h = await u.mount(str(p, 'volser'), { scratch: p.scratch === true, writable: p.writable !== false, ...fenceOf(p) });
        const owned: OwnedMount = { h, vtc: from, run, tag, lastUsed: this.#now() };
        // The VTC may have started again while this mount was being made (a recall takes time).
        if (run !== undefined && this.#runs.get(from) !== run) {
          await this.#unit.abandon(h);
          throw new StaleRunError(from, run);
        }
        // Or given up on it: its abandon by tag came while the mount was being made.
        if (tag !== undefined && this.#abandonedTags.delete(abandonedTag(from, run, tag))) {
          await this.#unit.abandon(h);
          throw new BadRequestError(`mount ${tag} of VTC ${from} was abandoned while it was being made`);
        }
        this.#mounts.set(h.id, owned);
        return { result: { h: h.id } };
      }
      case 'write':
        await u.write(this.#h(from, p), body);
        return {};
      case 'filemark':
        await u.writeFilemark(this.#h(from, p));
        return {};
      case 'read': {
        const r = await u.read(this.#h(from, p), Math.min(MAX_BODY, num(p, 'max')));
        if (r.kind === 'block') return { result: { kind: 'block', length: r.length, truncated: r.truncated }, body: r.data };
        return { result: { kind: r.kind } };
      }
      case 'rewind':
        await u.rewind(this.#h(from, p));
        return {};
      case 'close': {
        const h = this.#h(from, p);
        const generation = optNum(p, 'generation');
        const sha256 = optStr(p, 'sha256');
        try {
          const token = await u.close(h, { ...(generation === undefined ? {} : { generation }), ...(sha256 === undefined ? {} : { sha256 }), ...fenceOf(p) });
          // The hash of what the close made current, for a second VTS to commit the same data under (see VtsUnit.close).
          const meta = u.cache.get(h.volser);
          return { result: { ...token, ...(meta !== undefined && meta.dataGeneration === token.generation ? { sha256: meta.sha256 } : {}) } };
        } finally {
          // A refused close may leave the mount active (a stale generation: close again) or end it (fenced).
          if (!u.activeMounts().some((x) => x.id === h.id)) this.#mounts.delete(h.id);
        }
      }
      case 'abandon-tag': {
        // A mount whose call got no answer (a lost reply, a timeout): the VTC names it by the
        // tag it sent, in its run. Not made yet, or never: the tag is remembered so it is never made.
        const tag = str(p, 'tag');
        const run = optStr(p, 'run');
        const owned = [...this.#mounts.values()].find((m) => m.vtc === from && m.run === run && m.tag === tag);
        if (owned !== undefined) {
          await this.#abandon(owned, `its VTC got no answer to the mount (abandoned by its tag ${tag})`);
        } else {
          this.#abandonedTags.add(abandonedTag(from, run, tag));
          if (this.#abandonedTags.size > ABANDONED_TAGS_KEPT) {
            const first = this.#abandonedTags.values().next().value;
            if (first !== undefined) this.#abandonedTags.delete(first);
          }
        }
        return { result: this.#view() };
      }
      case 'abandon': {
        const owned = this.#mounts.get(num(p, 'h'));
        if (owned !== undefined) {
          const h = this.#h(from, p);
          await u.abandon(h);
          this.#mounts.delete(h.id);
        }
        return { result: this.#view() };
      }
      case 'export-open': {
        // One chunk per reply: a chunk larger than a frame's body would never reach the VTC.
        const x = await u.exportVolume(str(p, 'volser'), MAX_BODY);
        const id = this.#nextId++;
        this.#exports.set(id, { x, it: x.chunks[Symbol.asyncIterator](), vtc: from, run: optStr(p, 'run') });
        return { result: { xid: id, token: x.token, bytes: x.bytes, sha256: x.sha256 } };
      }
      case 'export-read': {
        const id = num(p, 'xid');
        const e = this.#exports.get(id);
        if (e === undefined) throw new BadRequestError(`unknown export ${id}`);
        const n = await e.it.next();
        if (n.done === true) {
          this.#exports.delete(id);
          return { result: { done: true } };
        }
        return { result: { done: false }, body: n.value };
      }
      case 'export-release': {
        const id = num(p, 'xid');
        const e = this.#exports.get(id);
        this.#exports.delete(id);
        if (e !== undefined) await e.x.release();
        return {};
      }
      case 'copy-open': {
        const volser = str(p, 'volser');
        const tok = p.token as { generation?: unknown; consistent?: unknown } | undefined;
        if (typeof tok?.generation !== 'number') throw new BadRequestError('copy-open needs a token');
        // A VTC copies a volume here once at a time (the copy holds the volume busy): its new
        // copy-open of the volume means its copier gave up on the earlier stream, whose abort
        // was lost with the link. That stream goes now, not at the idle bound, which would
        // refuse every copy of the volume until then (seed 147: resync never finished).
        for (const [cid, c] of this.#copies) {
          if (c.vtc !== from || c.volser !== volser) continue;
          this.#copies.delete(cid);
          this.#clock.clearTimeout(c.idle);
          c.q.abort(new BadRequestError(`copy ${cid} superseded by a new copy of ${volser} from ${from}`));
          this.#log.warn({ vtc: from, volser, cid }, 'copy superseded by a new copy of the same volume from the same VTC');
          await c.done.catch(() => undefined);
        }
        // The sender's own bound on the silence between its calls (its RPC timeouts), when it
        // gives one: past it the sender has failed, and its stream goes then rather than at the
        // server's generous default.
        const asked = optNum(p, 'idleMs');
        if (asked !== undefined && !(asked > 0)) throw new BadRequestError(`parameter idleMs must be a positive number of ms (got ${asked})`);
        const idleMs = Math.min(COPY_IDLE_MS, asked ?? COPY_IDLE_MS);
        const q = new ChunkQueue();
        const id = this.#nextId++;
        const done = u.applyCopy(volser, q, { generation: tok.generation, consistent: true }, { ...(typeof p.sha256 === 'string' ? { sha256: p.sha256 } : {}), ...fenceOf(p) });
        done.catch(() => undefined);
        this.#copies.set(id, { q, done, idle: this.#idle(id, q, idleMs), idleMs, vtc: from, run: optStr(p, 'run'), volser });
        return { result: { cid: id } };
      }
      case 'copy-write': {
        const c = this.#copies.get(num(p, 'cid'));
        if (c === undefined) throw new BadRequestError(`unknown copy ${String(p.cid)}`);
        this.#clock.clearTimeout(c.idle);
        c.idle = this.#idle(num(p, 'cid'), c.q, c.idleMs);
        c.q.push(body.slice());
        return {};
      }
      case 'copy-abort': {
        const id = num(p, 'cid');
        const c = this.#copies.get(id);
        if (c === undefined) return {};
        if (c.vtc !== from) throw new BadRequestError(`copy ${id} belongs to VTC ${c.vtc}, not ${from}`);
        this.#copies.delete(id);
        this.#clock.clearTimeout(c.idle);
        c.q.abort(new BadRequestError(`copy ${id} aborted by its sender`));
        // The destination's volume is free again once the unit has dropped the partial copy.
        await c.done.catch(() => undefined);
        return {};
      }
      case 'copy-close': {
        const id = num(p, 'cid');
        const c = this.#copies.get(id);
        if (c === undefined) throw new BadRequestError(`unknown copy ${id}`);
        this.#copies.delete(id);
        this.#clock.clearTimeout(c.idle);
        c.q.end();
        return { result: await c.done };
      }
      default:
        throw new BadRequestError(`unknown VTS method ${m}`);
    }
  }
}
