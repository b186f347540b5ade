/**
 * The host I/O router of a VTC: a host's mount, write, read and close, routed to the VTS the
 * copy policy and the I/O selection pick, under this VTC's epoch (every VTS operation carries
 * the fence of the key it was planned under), with the immediate copy or the deferred copy
 * queued at close. It reads the engine's write context and never changes the engine.
 */
import { formatStatus, VTS_NAMES } from '../ptp/types.js';
import type { VtsName } from '../ptp/types.js';
import type { Timing } from '../ptp/engine.js';
import type { VtcEngine } from '../ptp/engine.js';
import { planRead, planWrite, writeStillCurrent } from '../ptp/volumes.js';
import type { CopyMode, Token, WritePlan } from '../ptp/volumes.js';
import { copyVolume } from './copier.js';
import type { CopyQueue } from './copier.js';
import { AgentStoppedError, BadRequestError, codeOf, PtpOfflineError, RemoteError } from './errors.js';
import { MAX_BODY } from './rpc.js';
import type { VtsClient, EpochFence, RemoteView } from './vts-client.js';
import type { IoSelection } from './agent.js';

/** A host's mount through this VTC. */
export interface HostHandle {
  readonly id: number;
  readonly volser: string;
  /** The VTS serving the mount. */
  readonly vts: VtsName;
  readonly writable: boolean;
}

export interface CloseResult {
  readonly volser: string;
  readonly generation: number;
  readonly copyMode: CopyMode;
  /** VTS holding the data when the close was acknowledged. */
  readonly copies: readonly VtsName[];
  /** VTS that will get the data from the copy queue. */
  readonly queued: readonly VtsName[];
}

/**
 * How many of the secondary's blocks may still be on their way when a host write is
 * answered: the tee's own write-behind, on top of the drive's towards the primary.
 */
export const TEE_WINDOW = 8;

/**
 * The secondary VTS's mount of an immediate write, written as the host writes (the tee):
 * each block, filemark and rewind goes to it after the primary's, in order, through the same
 * VTS calls (the same checks on each). Dropped (its mount abandoned, nothing of it
 * committed) at its first failure, or when the host reads or positions on the mount; the
 * close then copies as without a tee.
 */
interface Tee {
  readonly vts: VtsName;
  readonly h: number;
  /** Calls sent to the secondary and not yet settled (each settles, never rejects). */
  readonly pending: Set<Promise<void>>;
  /** Host writes waiting for the window to have room. */
  readonly room: (() => void)[];
  /** Why it was dropped; null while it runs. */
  dropped: string | null;
  /** The abandon of its mount, once dropped. */
  ended: Promise<void> | null;
}

interface Mount {
  readonly handle: HostHandle;
  readonly h: number;
  readonly tee: Tee | null;
  readonly plan: (WritePlan & { ok: true }) | null;
  readonly copyMode: CopyMode;
  readonly epoch: number;
  readonly epochMac: string;
  /** The boot of each VTS this VTC knew when the mount was planned. */
  readonly boots: Readonly<Partial<Record<VtsName, string>>>;
  readonly minSeqs: Readonly<Record<VtsName, number>>;
}

/** The fence towards VTS `x`: the writer's epoch, the boot of `x` it knows (a restarted VTS refuses) and the seq `x` must have recorded (an older image refuses). */
export const fenceFor = (c: { readonly epoch: number; readonly epochMac: string; readonly boots: Readonly<Partial<Record<VtsName, string>>>; readonly minSeqs: Readonly<Record<VtsName, number>> }, x: VtsName): EpochFence => {
  const b = c.boots[x];
  return { epoch: c.epoch, epochMac: c.epochMac, minSeq: c.minSeqs[x], ...(b === undefined ? {} : { bootId: b }) };
};

/** What the router needs of its VTC. */
export interface HostRouterDeps {
  readonly self: string;
  readonly options: { readonly ioSelection?: IoSelection; readonly preferredVts?: VtsName; readonly copyMode?: CopyMode; readonly tee?: boolean };
  readonly engine: VtcEngine;
  readonly clients: Record<VtsName, VtsClient>;
  readonly copies: CopyQueue;
  readonly timing: Timing;
  /** The newest view of VTS `x` this VTC has (null when it has none). */
  view(x: VtsName): RemoteView | null;
  stopped(): boolean;
}

export class HostRouter {
  readonly #d: HostRouterDeps;
  readonly #mounts = new Map<number, Mount>();
  /**
   * VTS mounts this VTC ended but could not tell the VTS about (a close or abandon that
   * failed: the VTS unreachable, the reply lost). They are abandoned again until the VTS
   * answers: while this VTC's run keeps calling, nothing else frees them there, and the
   * volume stays busy on that VTS (production simulation seed 444: a read mount left on B
   * refused every copy of its volume, and resync never finished).
   */
  readonly #orphans = new Map<string, { vts: VtsName; h: number | string; boot: string | undefined }>();
  #nextTag = 1;
  #nextMount = 1;
  #balance = 0;

  constructor(deps: HostRouterDeps) {
    this.#d = deps;
  }

  #select(candidates: readonly VtsName[]): VtsName {
    const o = this.#d.options;
    const first = candidates[0] ?? 'A';
    if (candidates.length < 2) return first;
    if ((o.ioSelection ?? 'preferred') === 'preferred') return candidates.includes(o.preferredVts ?? 'A') ? (o.preferredVts ?? 'A') : first;
    this.#balance = (this.#balance + 1) % 2;
    const load = (x: VtsName): number => this.#d.view(x)?.mounts ?? 0;
    const [x, y] = candidates as [VtsName, VtsName];
    if (load(x) !== load(y)) return load(x) < load(y) ? x : y;
    return this.#balance === 0 ? x : y;
  }

  /**
   * Each VTS's token of `volser`, asked under this VTC's epoch. A VTS that answers EFENCED
   * recorded a key this VTC has not got: `fenced` names it, and the caller refuses the
   * operation (this VTC is behind; serving it could read or write outside current).
   */
  async #tokens(volser: string, fence: (x: VtsName) => EpochFence): Promise<{ A?: Token; B?: Token; data: Partial<Record<VtsName, number>>; fenced: VtsName[] }> {
    const out: { A?: Token; B?: Token; data: Partial<Record<VtsName, number>>; fenced: VtsName[] } = { data: {}, fenced: [] };
    await Promise.all(
      VTS_NAMES.map(async (x) => {
        try {
          const v = await this.#d.clients[x].view(this.#d.timing.heartbeatTimeout * 4);
          if (!v.inOperation) return;
          const t = (await this.#d.clients[x].tokens(fence(x))).find((k) => k.volser === volser);
          out[x] = t === undefined ? { generation: 0, consistent: true } : { generation: t.generation, consistent: t.consistent };
          out.data[x] = t?.dataGeneration ?? 0;
        } catch (e) {
          // Fenced: a newer key is recorded there, or it restarted unseen. Unreachable: not a candidate.
          if (codeOf(e) === 'EFENCED') out.fenced.push(x);
        }
      }),
    );
    return out;
  }

  /**
   * Mounts a volume for a host. A writable mount plans the write now (generation, epoch,
   * targets per copy mode); a read-only mount goes to a VTS holding current data. Rejects
   * with PtpOfflineError when the PtP system is off-line or no VTS can serve the volume.
   */
  async mount(volser: string, o: { scratch?: boolean; writable?: boolean; copyMode?: CopyMode } = {}): Promise<HostHandle> {
    if (this.#d.stopped()) throw new AgentStoppedError(this.#d.self);
    const ctx = this.#d.engine.writeContext();
    if (ctx.status.kind === 'offline') throw new PtpOfflineError(`PtP system is off-line (newest key ${ctx.epoch})`);
    const writable = o.writable !== false;
    const tokens = await this.#tokens(volser, (x) => fenceFor(ctx, x));
    if (tokens.fenced.length > 0) throw new PtpOfflineError(`VTS ${tokens.fenced.join(',')} fenced key ${ctx.epoch} of this VTC (a newer key recorded there, or it restarted since this VTC saw it): no host I/O until this VTC catches up`);
    const copyMode = o.copyMode ?? this.#d.options.copyMode ?? 'immediate';
    if (writable) {
      const usable = VTS_NAMES.filter((x) => tokens[x] !== undefined);
      const chosen = this.#select(usable);
      const plan = planWrite({ status: ctx.status, epoch: ctx.epoch, copyMode, primary: chosen, tokens: { A: tokens.A, B: tokens.B } });
      if (!plan.ok) throw new PtpOfflineError(plan.reason);
      // The host writes to one VTS; with immediate copies the other gets the data before the close is acknowledged.
      const primary = plan.targets.some((t) => t.vts === chosen && t.data) ? chosen : (plan.targets.find((t) => t.data)?.vts ?? chosen);
      // An immediate write from the beginning of the volume is written to the other VTS as
      // well, as the host writes (the tee): its close then only commits there. A write that
      // starts elsewhere on the volume, or a secondary that refuses the mount, is copied at close.
      const secondary = copyMode === 'immediate' && o.scratch === true && this.#d.options.tee !== false ? plan.targets.find((t) => t.vts !== primary && t.data)?.vts : undefined;
      const [ph, sh] = await Promise.allSettled([
        this.#vtsMount(primary, volser, { scratch: o.scratch === true, writable: true, ...fenceFor(ctx, primary) }, ctx.boots[primary]),
        secondary === undefined ? Promise.resolve(null) : this.#vtsMount(secondary, volser, { scratch: true, writable: true, ...fenceFor(ctx, secondary) }, ctx.boots[secondary]),
      ]);
      if (ph.status === 'rejected') {
        if (secondary !== undefined && sh.status === 'fulfilled' && sh.value !== null) await this.#d.clients[secondary].abandon(sh.value).catch(() => this.#orphan(secondary, sh.value!, ctx.boots[secondary]));
        throw ph.reason;
      }
      const tee: Tee | null = secondary !== undefined && sh.status === 'fulfilled' && sh.value !== null ? { vts: secondary, h: sh.value, pending: new Set(), room: [], dropped: null, ended: null } : null;
      if (tee !== null) this.teeStats.teed++;
      const handle: HostHandle = { id: this.#nextMount++, volser, vts: primary, writable: true };
      this.#mounts.set(handle.id, { handle, h: ph.value, tee, plan, copyMode, epoch: plan.epoch, epochMac: ctx.epochMac, boots: ctx.boots, minSeqs: ctx.minSeqs });
      return handle;
    }
    // The newest generation either VTS reports, from one that holds it; in on-line with both,
    // both must have answered under this VTC's epoch (see planRead).
    const withData = (x: VtsName): (Token & { dataGeneration: number }) | undefined => {
      const t = tokens[x];
      return t === undefined ? undefined : { ...t, dataGeneration: tokens.data[x] ?? 0 };
    };
    const rp = planRead({ status: ctx.status, tokens: { A: withData('A'), B: withData('B') } });
    if (!rp.ok) throw new PtpOfflineError(`${volser}: ${rp.reason}`);
    const x = this.#select(rp.holders);
    const h = await this.#vtsMount(x, volser, { writable: false, ...fenceFor(ctx, x) }, ctx.boots[x]);
    const handle: HostHandle = { id: this.#nextMount++, volser, vts: x, writable: false };
    this.#mounts.set(handle.id, { handle, h, tee: null, plan: null, copyMode, epoch: ctx.epoch, epochMac: ctx.epochMac, boots: ctx.boots, minSeqs: ctx.minSeqs });
    return handle;
  }

  #m(h: HostHandle): Mount {
    const m = this.#mounts.get(h.id);
    if (m === undefined) throw new BadRequestError(`mount ${h.id} is not active on VTC ${this.#d.self}`);
    return m;
  }

  /**
   * Writes a block on the mount's VTS, and on the secondary when the write is teed. Resolves
   * once the primary has it and the secondary's window has room; the secondary's failure
   * only drops the tee (the close copies instead).
   */
  write(h: HostHandle, data: Uint8Array): Promise<void> {
    const m = this.#m(h);
    const sent = this.#d.clients[m.handle.vts].write(m.h, data);
    const t = m.tee;
    if (t === null || t.dropped !== null) return sent;
    return Promise.all([sent, this.#teeSend(m, t, (c) => c.write(t.h, data))]).then(() => undefined);
  }
  writeFilemark(h: HostHandle): Promise<void> {
    const m = this.#m(h);
    const sent = this.#d.clients[m.handle.vts].writeFilemark(m.h);
    const t = m.tee;
    if (t === null || t.dropped !== null) return sent;
    return Promise.all([sent, this.#teeSend(m, t, (c) => c.writeFilemark(t.h))]).then(() => undefined);
  }
  read(h: HostHandle, max = MAX_BODY): ReturnType<VtsClient['read']> {
    const m = this.#m(h);
    // The secondary does not follow reads: its position would no longer be the primary's.
    if (m.tee !== null) this.#dropTee(m, m.tee, 'the host read on the mount');
    return this.#d.clients[m.handle.vts].read(m.h, max);
  }
  rewind(h: HostHandle): Promise<void> {
    const m = this.#m(h);
    const sent = this.#d.clients[m.handle.vts].rewind(m.h);
    const t = m.tee;
    if (t === null || t.dropped !== null) return sent;
    return Promise.all([sent, this.#teeSend(m, t, (c) => c.rewind(t.h))]).then(() => undefined);
  }

  /** Tees of immediate writes: made, dropped (the close copied instead), committed on the secondary at close. */
  readonly teeStats = { teed: 0, dropped: 0, committed: 0 };

  /**
   * Sends one call of the tee to the secondary now (so the calls reach it in the host's
   * order). Resolves once at most {@link TEE_WINDOW} calls are on their way there; never rejects.
   */
  #teeSend(m: Mount, t: Tee, call: (c: VtsClient) => Promise<unknown>): Promise<void> {
    const p: Promise<void> = call(this.#d.clients[t.vts]).then(
      () => undefined,
      (e: unknown) => this.#dropTee(m, t, `the secondary failed a call: ${codeOf(e) || String(e)}`),
    );
    t.pending.add(p);
    void p.finally(() => {
      t.pending.delete(p);
      if (t.pending.size <= TEE_WINDOW) for (const r of t.room.splice(0)) r();
    });
    if (t.pending.size <= TEE_WINDOW) return Promise.resolve();
    return new Promise((r) => t.room.push(r));
  }

  /** Drops the tee: the secondary's mount is abandoned after the calls already sent; nothing of it is committed. */
  #dropTee(m: Mount, t: Tee, why: string): void {
    if (t.dropped !== null) return;
    t.dropped = why;
    this.teeStats.dropped++;
    for (const r of t.room.splice(0)) r();
    t.ended = this.#d.clients[t.vts].abandon(t.h).then(
      () => undefined,
      () => this.#orphan(t.vts, t.h, m.boots[t.vts]),
    );
  }

  /** Ends the tee before its close: its calls settled, and its mount abandoned when it was dropped. */
  async #settleTee(t: Tee): Promise<void> {
    while (t.pending.size > 0) await Promise.all([...t.pending]);
    await t.ended;
  }

  /**
   * Closes a mount. For a write: commits the planned generation on the primary VTS, then
   * per copy mode either copies to the other VTS before answering (immediate) or marks it
   * behind and queues the copy (deferred). The answer is the acknowledgement; a rejection
   * means the write is not acknowledged.
   */
  async close(h: HostHandle): Promise<CloseResult> {
    const m = this.#m(h);
    this.#mounts.delete(h.id);
    const x = m.handle.vts;
    if (m.plan === null) {
      const t = await this.#d.clients[x].close(m.h, fenceFor(m, x)).catch((e: unknown) => this.#orphaned(x, m.h, m.boots[x], e));
      return { volser: h.volser, generation: t.generation, copyMode: m.copyMode, copies: [x], queued: [] };
    }
    const plan = m.plan;
    // Every target is checked under the write's epoch before the data is committed anywhere:
    // a VTC that missed a key (cut off from its peers) is fenced by the VTS that recorded it,
    // and commits nothing on the other, which the key may have left outside current.
    const others = plan.targets.filter((t) => t.vts !== x);
    const tee = m.tee;
    if (tee !== null) await this.#settleTee(tee);
    try {
      for (const t of others) await this.#d.clients[t.vts].fence(fenceFor(m, t.vts));
    } catch (e) {
      await this.#d.clients[x].abandon(m.h).catch(() => this.#orphan(x, m.h, m.boots[x]));
      if (tee !== null) this.#dropTee(m, tee, 'the write was not committed');
      throw e;
    }
    // A close that failed may not have reached the VTS: the mount is abandoned there later
    // (a no-op if the close did reach it). The secondary's tee is committed only after the
    // primary's commit: a write the primary refused (fenced, or its generation taken there)
    // must not become a generation on the secondary.
    let primary: Awaited<ReturnType<VtsClient['close']>>;
    try {
      primary = await this.#d.clients[x].close(m.h, { generation: plan.generation, ...fenceFor(m, x) }).catch((e: unknown) => this.#orphaned(x, m.h, m.boots[x], e));
    } catch (e) {
      if (tee !== null) this.#dropTee(m, tee, 'the primary did not commit');
      throw e;
    }
    const copies: VtsName[] = [x];
    const queued: VtsName[] = [];
    // Then the copy or token update, fenced again: a key recorded on the other VTS between the
    // check and here refuses it, so the write is not acknowledged; one recorded after it finds
    // the volume in that VTS's token summary and counts it as a pending copy.
    for (const t of others) {
      if (t.data && tee !== null && tee.vts === t.vts && (await this.#commitTee(m, tee, plan.generation, primary.sha256))) {
        copies.push(t.vts);
      } else if (t.data) {
        if (tee !== null) await this.#settleTee(tee);
        await copyVolume(h.volser, this.#d.clients[x], this.#d.clients[t.vts], fenceFor(m, t.vts));
        copies.push(t.vts);
      } else {
        await this.#d.clients[t.vts].markBehind(h.volser, plan.generation, fenceFor(m, t.vts), true);
        this.#d.copies.enqueue(h.volser, x, t.vts);
        queued.push(t.vts);
      }
    }
    // A key that took effect while the write ran and no longer holds every copy it made as
    // current (a forced shutdown that could not reach the VTS to fence it) means the write
    // is not acknowledged: the host must not count on it.
    const now = this.#d.engine.writeContext();
    if (!writeStillCurrent(plan.epoch, copies, now, this.#d.engine.newestKey().current)) {
      throw new PtpOfflineError(`key ${now.epoch} took effect while ${h.volser} was written (PtP ${formatStatus(now.status)}): the write is not acknowledged`);
    }
    return { volser: h.volser, generation: plan.generation, copyMode: m.copyMode, copies, queued };
  }

  /**
   * Commits the tee on the secondary as the generation the primary just committed, with the
   * primary's hash: the secondary's close refuses other data, refuses under a newer key
   * (the write's fence), and makes the generation current as a copy's close does (the same
   * commit of the data file and metadata). True once durable there; false when the tee was
   * dropped or the secondary refused (its mount then abandoned): the caller copies.
   */
  async #commitTee(m: Mount, t: Tee, generation: number, sha256: string | undefined): Promise<boolean> {
    if (t.dropped !== null) return false;
    if (sha256 === undefined) {
      this.#dropTee(m, t, 'the primary gave no hash of the committed data');
      return false;
    }
    try {
      const r = await this.#d.clients[t.vts].close(t.h, { generation, sha256, ...fenceFor(m, t.vts) });
      if (r.generation !== generation || (r.sha256 !== undefined && r.sha256 !== sha256)) throw new Error(`secondary committed generation ${r.generation}, not ${generation}`);
      this.teeStats.committed++;
      return true;
    } catch (e) {
      // A refused close may leave the mount there (a stale generation, other data): it ends now.
      this.#dropTee(m, t, `the secondary refused the commit: ${codeOf(e) || String(e)}`);
      return false;
    }
  }

  /** Writes a whole volume (scratch mount, blocks of at most 256 KiB, close). */
  async writeVolume(volser: string, data: Uint8Array, o: { copyMode?: CopyMode } = {}): Promise<CloseResult> {
    const h = await this.mount(volser, { scratch: true, writable: true, ...o });
    try {
      for (let off = 0; off < data.length; off += MAX_BODY / 2) await this.write(h, data.subarray(off, Math.min(data.length, off + MAX_BODY / 2)));
    } catch (e) {
      // The volume must not stay held on the VTS: the write is dropped there, and the host
      // gets the error (the previous generation stays).
      await this.abandon(h);
      throw e;
    }
    return this.close(h);
  }

  /**
   * Ends a mount without committing it: what was written since the mount is dropped on the
   * VTS and the previous generation stays (a host that lost its drive, or a write the host
   * must not count on). Never throws: a VTS that cannot be reached drops the mount itself
   * when this VTC's run is gone or silent.
   */
  async abandon(h: HostHandle): Promise<void> {
    const m = this.#mounts.get(h.id);
    this.#mounts.delete(h.id);
    if (m === undefined) return;
    if (m.tee !== null) this.#dropTee(m, m.tee, 'the write was abandoned');
    await Promise.all([this.#d.clients[m.handle.vts].abandon(m.h).catch(() => this.#orphan(m.handle.vts, m.h, m.boots[m.handle.vts])), m.tee?.ended]);
  }

  /**
   * Mounts on VTS `x` under a tag: a call that got no answer from the VTS (a timeout, a lost
   * link) may still have made the mount there, which would hold the volume for as long as
   * this VTC keeps calling (production simulation seed 354): it is abandoned by its tag.
   */
  async #vtsMount(x: VtsName, volser: string, o: Parameters<VtsClient['mount']>[1], boot: string | undefined): Promise<number> {
    const tag = `${this.#d.self}-${this.#nextTag++}`;
    try {
      return await this.#d.clients[x].mount(volser, { ...o, tag });
    } catch (e) {
      if (!(e instanceof RemoteError)) this.#orphan(x, tag, boot);
      throw e;
    }
  }

  /** Notes a VTS mount to abandon later (by handle, or by tag when the mount call got no answer), with the boot of the VTS it belongs to (mount handles are numbered per boot). */
  #orphan(x: VtsName, h: number | string, boot: string | undefined): void {
    this.#orphans.set(`${x}:${h}`, { vts: x, h, boot });
  }

  /** Notes a VTS mount whose close failed, and throws the close's error. */
  #orphaned(x: VtsName, h: number, boot: string | undefined, e: unknown): never {
    this.#orphan(x, h, boot);
    throw e;
  }

  /** VTS mounts still to be abandoned (their close or abandon failed). */
  get orphans(): number {
    return this.#orphans.size;
  }

  /** Abandons again the VTS mounts whose close or abandon failed; those the VTS acknowledges are forgotten. */
  async sweepOrphans(): Promise<void> {
    await Promise.all(
      [...this.#orphans].map(async ([k, o]) => {
        // A VTS that restarted since holds no mount of its earlier boot, and its handle
        // numbers start again: abandoning by number could end another mount.
        const boot = this.#d.view(o.vts)?.bootId;
        if (boot === undefined) return;
        if (o.boot === undefined || boot !== o.boot) {
          this.#orphans.delete(k);
          return;
        }
        try {
          if (typeof o.h === 'string') await this.#d.clients[o.vts].abandonTag(o.h);
          else await this.#d.clients[o.vts].abandon(o.h);
          this.#orphans.delete(k);
        } catch {
          // Still unreachable: the next sweep tries again.
        }
      }),
    );
  }

  /** Reads a whole volume up to its first filemark or end of data. */
  async readVolume(volser: string): Promise<{ data: Uint8Array; vts: VtsName }> {
    const h = await this.mount(volser, { writable: false });
    const parts: Uint8Array[] = [];
    try {
      while (true) {
        const r = await this.read(h, MAX_BODY / 2);
        if (r.kind !== 'block') break;
        parts.push(r.data);
      }
    } finally {
      await this.close(h).catch(() => undefined);
    }
    return { data: Buffer.concat(parts), vts: h.vts };
  }
}
