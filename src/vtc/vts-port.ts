/**
 * The protocol core's VtsPort over a remote VTS: each VtsOp of src/ptp mapped onto the
 * VTS unit's calls, with the execution modes of PROTOCOL.md (MODE_POLICY) carried out
 * here, since draining mounts and copies needs both VTS.
 */
import type { Logger } from 'pino';
import type { VtsOp, VtsResult } from '../ptp/engine.js';
import type { VtsPort } from '../ptp/ports.js';
import { MODE_POLICY } from '../ptp/rules.js';
import { otherVts } from '../ptp/types.js';
import type { VtsName, VtsView } from '../ptp/types.js';
import { copyVolume } from './copier.js';
import type { CopyQueue } from './copier.js';
import type { EpochFence, RemoteView, VtsClient } from './vts-client.js';
import { sleepOn, systemClock } from '../platform/clock.js';
import type { Clock } from '../platform/clock.js';

/** The core reads the VtsView fields; the agent keeps the rest (mounts, refusing) for status. */
const toView = (v: RemoteView): VtsView => v;
/** Polls without a mount or a transfer before a normal or expedite stop takes a write as finished. */
const SETTLE_POLLS = 5;

/**
 * Never rejects: a VTS that cannot be reached or refuses answers `{ok: false, error}`.
 * The engine puts its own timeout on every operation; a stop keeps running after that
 * (it cannot be cancelled) and its late answer is ignored by the engine.
 */
export class RemoteVtsPort implements VtsPort {
  readonly name: VtsName;
  readonly #clients: Record<VtsName, VtsClient>;
  readonly #copies: CopyQueue;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #opTimeoutMs: number;
  readonly #clock: Clock;

  /** `opTimeoutMs`: the engine's vtsOpTimeout; a stop gives up (the VTS stays in operation) before the engine stops waiting for it. `clock`: time and timers (the real ones by default). */
  constructor(name: VtsName, clients: Record<VtsName, VtsClient>, copies: CopyQueue, log: Logger, opTimeoutMs: number, pollMs = 20, clock: Clock = systemClock) {
    this.name = name;
    this.#clock = clock;
    this.#opTimeoutMs = opTimeoutMs;
    this.#clients = clients;
    this.#copies = copies;
    this.#log = log;
    this.#pollMs = pollMs;
  }

  async execute(op: VtsOp): Promise<VtsResult> {
    try {
      return { ok: true, view: toView(await this.#run(op)) };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e) };
    }
  }

  async #run(op: VtsOp): Promise<RemoteView> {
    const me = this.#clients[this.name];
    switch (op.op) {
      case 'status':
        return me.view();
      case 'record': {
        // A record planned for a boot the VTS no longer runs (it restarted, maybe as a restored image) records nothing.
        if (op.bootId !== undefined || op.minSeq !== undefined) this.#judge(await me.view(), op);
        return me.record(op.seq, op.mac);
      }
      case 'start':
        // Recording the seq vouches for the image: judge it first (a start with no seq records nothing).
        if (op.seq !== null && (op.bootId !== undefined || op.minSeq !== undefined)) this.#judge(await me.view(), op);
        return me.setIn(op.seq, op.mac);
      case 'reconcile':
        return this.#reconcile(op.seq, op.mac);
      case 'stop':
        return this.#stop(op);
    }
  }

  /** Tokens after a return: the newest generation wins; the side holding older data is marked behind and queued for a copy. */
  async #reconcile(seq: number, mac: string | undefined): Promise<RemoteView> {
    const x = this.name;
    const y = otherVts(x);
    const [tx, ty] = await Promise.all([this.#clients[x].tokens(), this.#clients[y].tokens()]);
    const gx = new Map(tx.map((t) => [t.volser, t]));
    const gy = new Map(ty.map((t) => [t.volser, t]));
    for (const v of new Set([...gx.keys(), ...gy.keys()])) {
      const a = gx.get(v);
      const b = gy.get(v);
      const g = Math.max(a?.generation ?? 0, b?.generation ?? 0);
      if ((a?.generation ?? 0) < g) await this.#clients[x].markBehind(v, g);
      if ((b?.generation ?? 0) < g) await this.#clients[y].markBehind(v, g);
      if ((a?.dataGeneration ?? 0) === g && (b?.dataGeneration ?? 0) < g) this.#copies.enqueue(v, x, y);
      if ((b?.dataGeneration ?? 0) === g && (a?.dataGeneration ?? 0) < g) this.#copies.enqueue(v, y, x);
    }
    await this.#clients[y].record(seq, mac);
    return this.#clients[x].record(seq, mac);
  }

  /**
   * Leaves operation per MODE_POLICY. New mounts are refused at once in every mode. Normal
   * and expedite let the mounts already active (host writes in flight) run to completion
   * (expedite: until its bound) and drain copies, and only then record the key's seq: a
   * seq recorded first would fence those very writes (their epoch is older), which is what
   * the mode table says they must not be. Immediate and forced record the seq first, so no
   * write in flight can close after the key, and abort the mounts.
   */
  async #stop(op: Extract<VtsOp, { op: 'stop' }>): Promise<RemoteView> {
    const me = this.#clients[this.name];
    const v0 = await me.view();
    // A failure key judged this boot of the VTS: one that restarted since (maybe a restored image) is not stopped and records nothing.
    this.#judge(v0, op);
    if (!v0.inOperation) return me.setOut(op.seq, `key ${op.seq}`, op.mac);
    // Past the engine's own timeout the key fails: the VTS must then still be in operation, never out without a key.
    const giveUp = this.#clock.now() + this.#opTimeoutMs * 0.8;
    const policy = MODE_POLICY[op.mode];
    // A key older than the one the VTS recorded, or a fork of its seq (made by a VTC that was
    // cut off), takes nothing out of operation: checked before new mounts are refused.
    if (op.mac !== undefined) await me.fence({ epoch: op.seq, epochMac: op.mac });
    await me.refuse(true);
    try {
      return await this.#leave(me, op, policy, giveUp);
    } catch (e) {
      // The VTS stays in operation (the key fails): it must take mounts again.
      await me.refuse(false).catch(() => undefined);
      throw e;
    }
  }

  async #leave(me: VtsClient, op: Extract<VtsOp, { op: 'stop' }>, policy: (typeof MODE_POLICY)[keyof typeof MODE_POLICY], giveUp: number): Promise<RemoteView> {
    const now = (): number => this.#clock.now();
    if (policy.activeMounts === 'abort') {
      await me.record(op.seq, op.mac);
    } else {
      const bound = policy.activeMounts === 'complete-until-bound' ? Math.min(giveUp, now() + op.expediteTimeout) : giveUp;
      // A host write is in flight until its VTC has copied it on (immediate) or marked the
      // other VTS behind (deferred) after the close: wait for the mounts, then for the
      // transfers, until neither has been seen for a few polls.
      let quietSince: number | null = null;
      while (now() < bound) {
        const v = await me.view();
        if (v.mounts > 0 || (v.transfers ?? 0) > 0) quietSince = null;
        else if (quietSince === null) quietSince = now();
        else if (now() - quietSince >= this.#pollMs * SETTLE_POLLS) break;
        await sleepOn(this.#clock, this.#pollMs);
      }
      if (op.drainTo !== null) await this.#drain(op.drainTo, bound, op.mac === undefined ? undefined : { epoch: op.seq, epochMac: op.mac });
      if (policy.activeMounts === 'complete' && now() >= giveUp) {
        throw new Error(`VTS ${this.name}: active mounts or pending copies did not finish within ${Math.round(this.#opTimeoutMs * 0.8)} ms; it stays in operation`);
      }
      // The mounts that were active have closed (or, expedite, ran out of time and are
      // aborted next): from here the seq fences every writer that has not seen the key.
      await me.record(op.seq, op.mac);
    }
    const aborted = await me.abort(`VTS ${this.name} leaving operation (${op.mode}, key ${op.seq})`);
    if (aborted.aborted > 0) this.#log.warn({ vts: this.name, aborted: aborted.aborted, mode: op.mode }, 'mounts aborted');
    return me.setOut(op.seq, `key ${op.seq} (${op.mode})`, op.mac);
  }

  /**
   * Throws unless the VTS is the one the key was planned against: the same boot, and no
   * older image than the newest seq it confirmed recording (a restored image reports less).
   * A key's seq recorded on an unjudged image would let it pass every later election.
   */
  #judge(v: RemoteView, op: { readonly bootId?: string; readonly minSeq?: number }): void {
    if (op.bootId !== undefined && v.bootId !== undefined && v.bootId !== op.bootId) throw new Error(`VTS ${this.name} restarted (boot ${v.bootId}) since the key judged boot ${op.bootId}`);
    if (op.minSeq !== undefined && v.lastKeySeq < op.minSeq) throw new Error(`VTS ${this.name} reports last key seq ${v.lastKeySeq}, below seq ${op.minSeq} it confirmed recording: an older image`);
  }

  /** Copies every volume one side is behind on from the side that holds it, until `bound`. */
  async #drain(to: VtsName, bound: number, fence: EpochFence | undefined): Promise<void> {
    const x = this.name;
    const [vx, vy] = await Promise.all([this.#clients[x].view(), this.#clients[to].view()]);
    const jobs: [string, VtsName, VtsName][] = [...vy.behind.map((v): [string, VtsName, VtsName] => [v, x, to]), ...vx.behind.map((v): [string, VtsName, VtsName] => [v, to, x])];
    for (const [v, from, dest] of jobs) {
      if (this.#clock.now() >= bound) return;
      try {
        await copyVolume(v, this.#clients[from], this.#clients[dest], fence);
      } catch (e) {
        this.#log.warn({ err: e, volser: v }, 'copy while draining failed; it stays pending');
      }
    }
  }
}
