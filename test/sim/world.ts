/**
 * The deterministic simulation: n VTC engines, two VTS models, a seeded network with an
 * adversary, VTC crashes, VTS outages, operator commands in every mode and host writes,
 * under one simulated clock. Invariants are checked after every event.
 */
import { RecordSigner } from '../../src/ptp/codec.js';
import { VtcEngine } from '../../src/ptp/engine.js';
import type { CommandResult, Effect, OperatorCommand, Timing, VtsOp, VtsResult } from '../../src/ptp/engine.js';
import { PtpError } from '../../src/ptp/errors.js';
import { HmacSha256 } from '../../src/ptp/mac.js';
import type { MacAlgorithm } from '../../src/ptp/mac.js';
import { MemoryJournal } from '../../src/ptp/memory-journal.js';
import { SeededRandom } from '../../src/ptp/random.js';
import { isOnline, isStrong } from '../../src/ptp/rules.js';
import type { BrokenRule } from '../../src/ptp/rules.js';
import { formatStatus, otherVts, VTS_NAMES } from '../../src/ptp/types.js';
import type { Mode, ShutdownKey, VtsName } from '../../src/ptp/types.js';
import { applyWrite, copyVolume, planRead, planWrite, reconcileTokens, writeStillCurrent } from '../../src/ptp/volumes.js';
import type { CopyMode } from '../../src/ptp/volumes.js';
import { FrameCodec } from '../../src/net/frame.js';
import { SimNetwork } from '../../src/net/sim-network.js';
import { VoteTallyRef } from '../../src/hotpath/vote-tally-ref.js';
import { Scheduler } from './scheduler.js';
import { forgedMessage, SimKeyring, SimMac } from './sim-mac.js';
import { SimVts } from './vts-model.js';
import type { Mount, VtsImage } from './vts-model.js';

/** A frame's identity: sender and its run (a restarted sender is another run), receiver, stamp and counter. */
const frameId = (from: string, run: bigint, to: string, sentAt: number, counter: number): string => `${from}#${run}>${to}@${sentAt}:${counter}`;

export const SIM_TIMING: Timing = {
  tick: 50,
  heartbeatTimeout: 160,
  ackTimeout: 200,
  vtsOpTimeout: 500,
  returnGrace: 150,
  electionTimeout: 300,
  pendingTimeout: 600,
  helloInterval: 400,
  expediteTimeout: 60,
  stagger: 40,
};

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface VtcNode {
  readonly name: string;
  engine: VtcEngine;
  alive: boolean;
  incarnation: number;
  readonly journal: MemoryJournal;
  codec: FrameCodec;
}

export interface WorldOptions {
  readonly seed: number;
  readonly n: number;
  readonly hmac?: boolean;
  readonly broken?: BrokenRule;
  readonly timing?: Timing;
  readonly loss?: number;
  readonly duplicate?: number;
  readonly maxDelay?: number;
  /** Keep a readable log of events (for a failing seed). */
  readonly trace?: boolean;
  /** Background copies between the VTS (default on). */
  readonly copier?: boolean;
  /**
   * Test-only: model the VTC's host path as it was before copies and token updates carried
   * the writer's epoch (`unfencedCopies`: only the VTS the host writes to fences it) and
   * before reads compared generations across both VTS (`preferredReads`: any VTS whose token
   * reads consistent serves, the preferred one first), to prove the checker catches both.
   */
  readonly legacy?: { readonly unfencedCopies?: boolean; readonly preferredReads?: boolean };
  /**
   * Modelled costs (the recovery model, docs/recovery-bench.md); each left out keeps the
   * seeded default, so existing schedules are unchanged. `oneWayDelay`: every frame between
   * VTCs takes exactly this many ms (instead of a draw between 1 and `maxDelay`).
   */
  readonly oneWayDelay?: number;
  /** Every journal append (keys, commits, sightings) is durable exactly this many ms after it is asked for (instead of 0.5 to 2.5 ms). */
  readonly appendLatency?: number;
  /**
   * A VTS is a remote peer: a status answers after `roundTrip` ms, an operation that records
   * (start, record, stop, reconcile) after `roundTrip + write` ms (its state file made durable),
   * and an unreachable VTS answers as such after `roundTrip` (a refused connection), or never
   * with `silent` (a host that lost power: the engine's timeouts end the wait). Without it, a
   * status answers within the same event and an operation after 0.5 ms.
   */
  readonly vtsCost?: { readonly roundTrip: number; readonly write: number; readonly silent?: boolean };
  /** Keep the causal history of every engine input (`World.causal`), to find a decision's critical path. */
  readonly causal?: boolean;
}

/** How an engine input came about: the input whose effect it is, and over which edge. */
export type CausalEdge = 'hop' | 'append' | 'vts' | 'timer';

/**
 * One engine input in the causal history (`causal: true`). `parent` is the input during
 * which the effect this input completes was emitted: the frame's send, the append's or VTS
 * operation's request. A tick's parent is the newest other input of its VTC that could
 * inform it (not a hello, nor a heartbeat answer the same as the one before: what the engine
 * last learned before the timer acted on it), over a `timer` edge. Following parents
 * back from a decision gives its critical path: each input is the last of those it waited on.
 */
export interface CausalEvent {
  readonly id: number;
  readonly node: string;
  readonly kind: 'command' | 'tick' | 'frame' | 'append' | 'vts' | 'restore';
  readonly at: number;
  readonly parent: number | null;
  readonly edge: CausalEdge | null;
  /** Message type (frame), record (append: `key 3`, `commit 3 by vtc1 done`, `sighting`), or VTS operation (`B start`). */
  readonly detail: string;
  /** The effects this input produced (`send propose`, `append key`, `vts B status`...), in order. */
  readonly out: string[];
}

/** A message between VTCs (`causal: true`). */
export interface SentMessage {
  readonly at: number;
  readonly from: string;
  readonly to: string;
  readonly t: string;
}

export class World {
  readonly sched = new Scheduler();
  readonly rng: SeededRandom;
  readonly net: SimNetwork;
  readonly vtcs: VtcNode[] = [];
  readonly results = new Map<string, CommandResult>();
  readonly vts: Record<VtsName, SimVts> = { A: new SimVts('A'), B: new SimVts('B') };
  readonly names: string[];
  readonly timing: Timing;
  readonly mac: MacAlgorithm;
  readonly #forgerKey: number;
  readonly keyring: SimKeyring;
  readonly #insiderFrames = new Set<string>();
  readonly #signer: RecordSigner;
  readonly #cutVts = new Set<string>();
  readonly #copyMode = new Map<string, CopyMode>();
  readonly volumes: string[];
  readonly #maxAcked = new Map<string, number>();
  /** Acknowledged copies a restored image destroyed, per VTS (`vol@gen`): no longer asked of it, but a read must never serve older. */
  readonly #destroyed: Record<VtsName, Set<string>> = { A: new Set(), B: new Set() };
  readonly #restored = new Set<VtsName>();
  /** Draws of the faults added with reads and restored images, apart from `rng` so older seeds keep their schedules. */
  readonly rng2: SeededRandom;
  readonly #legacy: NonNullable<WorldOptions['legacy']>;
  readonly #honestFrames = new Set<string>();
  readonly #deliveredFrames = new Set<string>();
  readonly #yesCast = new Map<string, Set<string>>();
  readonly #honestKeys = new Set<string>();
  readonly #checkedElectionKeys = new Set<string>();
  readonly #traced = new Set<string>();
  readonly captured: { to: string; frame: Uint8Array }[] = [];
  readonly log: string[] = [];
  readonly trace: boolean;
  readonly counters = { acked: 0, refused: 0, failedWrites: 0, commandsOk: 0, commandsFailed: 0, adversaryFrames: 0, elections: 0 };
  readonly errorCodes: Record<string, number> = {};
  #cmdSeq = 0;
  readonly #broken: BrokenRule | undefined;
  readonly #appendLatency: number | undefined;
  readonly #vtsCost: WorldOptions['vtsCost'];
  /** The causal history (`causal: true`), indexed by id; null otherwise. */
  readonly causal: CausalEvent[] | null;
  /** Every message between VTCs (`causal: true`). */
  readonly sent: SentMessage[] = [];
  #cause: number | null = null;
  readonly #lastInput = new Map<string, number>();
  readonly #frameCause = new Map<string, number>();
  readonly #lastView = new Map<string, string>();

  constructor(o: WorldOptions) {
    this.rng = new SeededRandom(o.seed);
    this.rng2 = new SeededRandom((o.seed ^ 0x5bd1e995) >>> 0);
    this.#legacy = o.legacy ?? {};
    this.timing = o.timing ?? SIM_TIMING;
    this.trace = o.trace ?? false;
    this.#broken = o.broken;
    this.#appendLatency = o.appendLatency;
    this.#vtsCost = o.vtsCost;
    this.causal = o.causal === true ? [] : null;
    this.names = Array.from({ length: o.n }, (_, i) => `vtc${i}`);
    this.mac = o.hmac === true ? new HmacSha256('sim cluster secret 0123456789') : new SimMac(0x5eed ^ o.seed);
    // The forger's key differs from the cluster's for every seed (a fixed 0xbad equalled 0x5eed ^ 21824).
    this.#forgerKey = (0x5eed ^ o.seed ^ 0xbad) >>> 0;
    this.keyring = new SimKeyring(o.seed, this.names, o.hmac === true);
    this.#signer = new RecordSigner(this.keyring.verifier());
    this.net = new SimNetwork(this.sched, this.rng, { loss: o.loss ?? 0, duplicate: o.duplicate ?? 0, minDelay: o.oneWayDelay ?? 1, maxDelay: o.oneWayDelay ?? o.maxDelay ?? 10 });
    this.net.onWire = (_from, to, frame) => {
      if (this.captured.length < 64) this.captured.push({ to, frame });
      else if (this.rng.next() < 0.05) this.captured[this.rng.int(64)] = { to, frame };
    };
    this.volumes = Array.from({ length: 6 }, (_, i) => `V0000${i}`);
    for (const v of this.volumes) this.#copyMode.set(v, this.rng.next() < 0.5 ? 'immediate' : 'deferred');
    for (const name of this.names) {
      const journal = new MemoryJournal();
      const node: VtcNode = { name, engine: this.#newEngine(name), alive: true, incarnation: 0, journal, codec: this.#newCodec(name) };
      this.vtcs.push(node);
      const ep = this.net.endpoint(name);
      ep.onFrame((frame) => this.#onFrame(node, frame));
      this.#input(node, 'restore', null, null, '');
      node.engine.restore([], 0);
      this.#drain(node);
    }
    for (const node of this.vtcs) this.#scheduleTick(node, node.incarnation, this.rng.int(this.timing.tick));
    if (o.copier !== false) this.#scheduleCopier();
    this.#scheduleSweep();
  }

  #newEngine(name: string): VtcEngine {
    return new VtcEngine(
      { ptpId: 'ptp1', vtcs: this.names, self: name, timing: this.timing },
      { keys: this.keyring.forVtc(name), tally: (opts) => new VoteTallyRef(opts), ...(this.#broken === undefined ? {} : { broken: this.#broken }) },
    );
  }
  #newCodec(name: string): FrameCodec {
    return new FrameCodec({ vtcs: this.names, self: name, mac: this.mac, freshnessMs: 2000 }, this.sched.now());
  }

  note(s: string): void {
    if (this.trace) this.log.push(`${this.sched.now().toFixed(1)} ${s}`);
  }

  // ------------------------------------------------------------------ engine plumbing

  /** Notes an engine input in the causal history (when kept); its effects are then attributed to it. */
  #input(node: VtcNode, kind: CausalEvent['kind'], parent: number | null, edge: CausalEdge | null, detail: string, informative = true): void {
    if (this.causal === null) return;
    const id = this.causal.length;
    this.causal.push({ id, node: node.name, kind, at: this.sched.now(), parent, edge, detail, out: [] });
    // What a later tick acts on: not the tick itself, a hello (gossip sent every helloInterval
    // whatever happens) or a heartbeat answer that says nothing new.
    if (kind !== 'tick' && informative) this.#lastInput.set(node.name, id);
    this.#cause = id;
  }
  /** A VTS status answer that differs from the last one this VTC got from that VTS. */
  #newView(node: VtcNode, x: VtsName, r: VtsResult): boolean {
    const k = `${node.name}|${x}`;
    const s = r.ok ? `${r.view.inOperation}:${r.view.lastKeySeq}:${r.view.bootId ?? ''}:${r.view.imageId ?? ''}:${r.view.behind.length}` : 'unreachable';
    if (this.#lastView.get(k) === s) return false;
    this.#lastView.set(k, s);
    return true;
  }
  #noteOut(what: string): void {
    if (this.causal !== null && this.#cause !== null) this.causal[this.#cause]!.out.push(what);
  }

  #scheduleTick(node: VtcNode, inc: number, delay: number): void {
    this.sched.at(this.sched.now() + delay, () => {
      if (!node.alive || node.incarnation !== inc) return;
      this.#input(node, 'tick', this.#lastInput.get(node.name) ?? null, 'timer', '');
      node.engine.tick(this.sched.now());
      this.#drain(node);
      this.#scheduleTick(node, inc, this.timing.tick);
    });
  }

  #drain(node: VtcNode): void {
    const inc = node.incarnation;
    for (const e of node.engine.takeEffects()) this.#effect(node, inc, e);
    this.check();
  }

  #effect(node: VtcNode, inc: number, e: Effect): void {
    switch (e.kind) {
      case 'send': {
        if (!node.alive) return;
        const frame = node.codec.seal(e.to, new TextEncoder().encode(JSON.stringify(e.msg)), this.sched.now());
        const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
        this.#honestFrames.add(frameId(node.name, v.getBigUint64(21), e.to, v.getFloat64(9), v.getUint32(17)));
        if (this.causal !== null) {
          if (this.#cause !== null) this.#frameCause.set(frameId(node.name, v.getBigUint64(21), e.to, v.getFloat64(9), v.getUint32(17)), this.#cause);
          this.#noteOut(`send ${e.msg.t}`);
          this.sent.push({ at: this.sched.now(), from: node.name, to: e.to, t: e.msg.t });
        }
        if (e.msg.t === 'propose' || e.msg.t === 'commit') {
          this.#honestKeys.add(e.msg.key.mac);
          if (this.trace) {
            const k = e.msg.key;
            const tag = `${e.msg.t}:${k.mac}:${node.name}`;
            if (!this.#traced.has(tag)) {
              this.#traced.add(tag);
              const c = e.msg.t === 'commit' ? e.msg.commit : null;
              this.note(`${node.name} ${e.msg.t} key ${k.seq} ${k.command} [${k.subjects.join(',')}] ${k.mode} ${k.reason} origin=${k.originVtc}` + (c === null ? '' : ` -> ${c.outcome} current={${c.current.join(',')}} pending=${JSON.stringify(c.copiesPending)} acks=${c.acks.join(',')} state=${c.state.kind}${c.error === null ? '' : ' err=' + c.error}`));
            }
          }
        }
        this.net.endpoint(node.name).send(e.to, frame);
        return;
      }
      case 'append': {
        if (e.record.type !== 'sighting') this.#honestKeys.add(e.record.key.mac);
        node.journal.stage(this.#signer.encodeRecord(e.record));
        const cause = this.#cause;
        const r = e.record;
        const what = this.causal === null ? '' : r.type === 'sighting' ? 'sighting' : r.type === 'key' ? `key ${r.key.seq}` : `commit ${r.key.seq} by ${r.commit.coordinator} ${r.commit.outcome}`;
        this.#noteOut(`append ${what}`);
        // A sighting takes no draw from the schedule's stream (seeds keep their events).
        const latency = this.#appendLatency ?? (e.record.type === 'sighting' ? 1.5 : 0.5 + this.rng.next() * 2);
        this.sched.at(this.sched.now() + latency, () => {
          if (!node.alive || node.incarnation !== inc) return;
          // Nothing waits for a sighting to be durable: it informs no later tick.
          this.#input(node, 'append', cause, 'append', what, r.type !== 'sighting');
          node.journal.sync();
          node.engine.appended(e.token, this.sched.now());
          this.#drain(node);
        });
        return;
      }
      case 'vts':
        return this.#vtsOp(node, inc, e.vts, e.op, e.token);
      case 'result':
        this.results.set(e.commandId, e.result);
        if (e.result.ok) this.counters.commandsOk++;
        else {
          this.counters.commandsFailed++;
          this.errorCodes[e.result.error.code] = (this.errorCodes[e.result.error.code] ?? 0) + 1;
        }
        this.note(`${node.name} command ${e.commandId}: ${e.result.ok ? `ok key ${e.result.seq}` : e.result.error.message}`);
        return;
      case 'status':
        this.note(`${node.name} status ${formatStatus(e.status)} @key ${e.seq}`);
        return;
      case 'seen':
        return;
      case 'ballot': {
        const b = e.ballot;
        const k = `${b.election.seq}:${b.election.vts}:${b.election.round}`;
        this.note(`${node.name} ballot ${k} ${b.choice} keySeq=${b.keySeq} (${b.why})`);
        if (b.choice === 'yes') {
          let s = this.#yesCast.get(k);
          if (s === undefined) this.#yesCast.set(k, (s = new Set()));
          s.add(b.voter);
        }
        return;
      }
    }
  }

  #onFrame(node: VtcNode, frame: Uint8Array): void {
    if (!node.alive) return;
    const r = node.codec.open(frame, this.sched.now());
    if (!r.ok) return;
    const id = frameId(r.from, r.fromRun, node.name, r.sentAt, r.counter);
    if (!this.#honestFrames.has(id) && !this.#insiderFrames.has(id)) throw new InvariantViolation('security', `a frame no VTC sent was accepted by ${node.name}: ${id}`);
    if (this.#deliveredFrames.has(id)) throw new InvariantViolation('security', `a replayed frame was accepted by ${node.name}: ${id}`);
    this.#deliveredFrames.add(id);
    let msg: unknown;
    try {
      msg = JSON.parse(new TextDecoder().decode(r.payload));
    } catch {
      throw new InvariantViolation('security', 'an authenticated frame did not decode');
    }
    if (this.causal !== null) {
      const t = typeof msg === 'object' && msg !== null && 't' in msg ? String(msg.t) : '?';
      this.#input(node, 'frame', this.#frameCause.get(id) ?? null, 'hop', t, t !== 'hello');
    }
    node.engine.receive(r.from, msg, this.sched.now());
    this.#drain(node);
  }

  // ------------------------------------------------------------------ VTS

  vtsLinked(vtc: string, x: VtsName): boolean {
    return !this.#cutVts.has(`${vtc}|${x}`);
  }
  cutVtsLink(vtc: string, x: VtsName): void {
    this.#cutVts.add(`${vtc}|${x}`);
  }
  healVtsLinks(): void {
    this.#cutVts.clear();
  }
  #usable(vtc: string, x: VtsName): boolean {
    const v = this.vts[x];
    return v.powered && v.inOperation && !v.stopping && this.vtsLinked(vtc, x);
  }

  #vtsOp(node: VtcNode, inc: number, x: VtsName, op: VtsOp, token: number): void {
    const v = this.vts[x];
    const cause = this.#cause;
    if (this.causal !== null) this.#noteOut(`vts ${x} ${op.op}`);
    const cost = this.#vtsCost;
    const reply = (delay: number, fn: () => VtsResult): void => {
      // Modelled: a status costs a round trip, an operation that records a round trip and a durable write.
      const d = cost === undefined ? delay : op.op === 'status' ? cost.roundTrip : cost.roundTrip + cost.write;
      this.sched.at(this.sched.now() + d, () => {
        if (!node.alive || node.incarnation !== inc) return;
        const r = v.powered && this.vtsLinked(node.name, x) ? fn() : { ok: false as const, error: 'unreachable' };
        if (this.causal !== null) this.#input(node, 'vts', cause, 'vts', `${x} ${op.op}${r.ok ? '' : ' unreachable'}`, op.op !== 'status' || this.#newView(node, x, r));
        node.engine.vtsResult(token, r, this.sched.now());
        this.#drain(node);
      });
    };
    if (!v.powered || !this.vtsLinked(node.name, x)) {
      if (cost === undefined) return reply(1, () => ({ ok: false, error: 'unreachable' }));
      if (cost.silent === true) return;
      this.sched.at(this.sched.now() + cost.roundTrip, () => {
        if (!node.alive || node.incarnation !== inc) return;
        const r: VtsResult = { ok: false, error: 'unreachable' };
        this.#input(node, 'vts', cause, 'vts', `${x} ${op.op} unreachable`, op.op !== 'status' || this.#newView(node, x, r));
        node.engine.vtsResult(token, r, this.sched.now());
        this.#drain(node);
      });
      return;
    }
    switch (op.op) {
      case 'status':
        if (cost !== undefined) return reply(cost.roundTrip, () => ({ ok: true, view: v.view() }));
        // Heartbeats answer within the same event: half the events of a schedule otherwise.
        node.engine.vtsResult(token, { ok: true, view: v.view() }, this.sched.now());
        return;
      case 'record':
        // As the production port: a record planned for another boot records nothing.
        if ((op.bootId !== undefined && op.bootId !== v.bootId) || v.lastKeySeq < (op.minSeq ?? 0)) return reply(0.5, () => ({ ok: false, error: 'restarted since judged, or an older image' }));
        v.record(op.seq, op.mac);
        return reply(0.5, () => ({ ok: true, view: v.view() }));
      case 'start':
        // As the production port: a start that records a seq judges the VTS first (boot, older image).
        if (op.seq !== null && ((op.bootId !== undefined && op.bootId !== v.bootId) || v.lastKeySeq < (op.minSeq ?? 0))) return reply(0.5, () => ({ ok: false, error: 'restarted since judged, or an older image' }));
        v.inOperation = true;
        v.stopping = false;
        if (op.seq !== null) v.record(op.seq, op.mac);
        this.note(`VTS ${x} start by ${node.name} key ${op.seq}`);
        return reply(0.5, () => ({ ok: true, view: v.view() }));
      case 'reconcile': {
        const o = this.vts[otherVts(x)];
        if (!o.powered || !o.inOperation || !v.inOperation) return reply(1, () => ({ ok: false, error: 'other VTS not in operation' }));
        reconcileTokens(v.vols, o.vols);
        v.record(op.seq, op.mac);
        o.record(op.seq, op.mac);
        return reply(0.5, () => ({ ok: true, view: v.view() }));
      }
      case 'stop':
        return this.#stop(node, inc, v, op, token);
    }
  }

  #stop(node: VtcNode, inc: number, v: SimVts, op: Extract<VtsOp, { op: 'stop' }>, token: number): void {
    const now = this.sched.now();
    const cause = this.#cause;
    const cost = this.#vtsCost;
    // Modelled: the answer comes a round trip (and a durable write, when it records) after the request.
    const refuseAfter = cost === undefined ? 0.5 : cost.roundTrip;
    const answerAfter = cost === undefined ? 0.5 : cost.roundTrip + cost.write;
    if ((op.bootId !== undefined && op.bootId !== v.bootId) || v.lastKeySeq < (op.minSeq ?? 0)) {
      // As the production port: a failure key's stop judged another boot, or finds an older
      // image than the seq it confirmed; nothing is recorded.
      this.sched.at(now + refuseAfter, () => {
        if (!node.alive || node.incarnation !== inc) return;
        this.#input(node, 'vts', cause, 'vts', `${v.name} stop refused`);
        node.engine.vtsResult(token, { ok: false, error: 'restarted since judged' }, this.sched.now());
        this.#drain(node);
      });
      return;
    }
    if (!v.inOperation) {
      v.recordAlways(op.seq, op.mac);
      this.sched.at(now + answerAfter, () => {
        if (!node.alive || node.incarnation !== inc) return;
        this.#input(node, 'vts', cause, 'vts', `${v.name} stop`);
        node.engine.vtsResult(token, { ok: true, view: v.view() }, this.sched.now());
        this.#drain(node);
      });
      return;
    }
    // The seq is recorded when the VTS leaves operation: mounts that may still finish (normal,
    // expedite) must not be fenced by the key that is taking the VTS out.
    v.stopping = true;
    const bound = now + op.expediteTimeout;
    let until = now;
    const mounts = [...v.mounts];
    if (op.mode === 'immediate' || op.mode === 'forced') for (const m of mounts) m.aborted = true;
    else for (const m of mounts) until = Math.max(until, op.mode === 'expedite' ? Math.min(m.end, bound) : m.end);
    const copyCost = 3;
    const other = op.drainTo === null ? null : this.vts[op.drainTo];
    this.note(`VTS ${v.name} stopping (${op.mode}) by ${node.name} key ${op.seq}`);
    this.sched.at(until + answerAfter, () => {
      if (!v.powered) return;
      if (op.mode === 'expedite') for (const m of v.mounts) if (m.end > this.sched.now()) m.aborted = true;
      let t = this.sched.now();
      if (other !== null && other.powered && other.inOperation && (op.mode === 'normal' || op.mode === 'expedite')) {
        for (const vol of this.volumes) {
          if (op.mode === 'expedite' && t + copyCost > bound) break;
          if (copyVolume(v.vols, other.vols, vol) || copyVolume(other.vols, v.vols, vol)) t += copyCost;
        }
      }
      this.sched.at(t, () => {
        if (!v.powered) return;
        for (const m of v.mounts) m.aborted = true;
        v.record(op.seq, op.mac);
        v.inOperation = false;
        v.stopping = false;
        this.note(`VTS ${v.name} out of operation`);
        if (!node.alive || node.incarnation !== inc || !this.vtsLinked(node.name, v.name)) return;
        this.#input(node, 'vts', cause, 'vts', `${v.name} stop`);
        node.engine.vtsResult(token, { ok: true, view: v.view() }, this.sched.now());
        this.#drain(node);
      });
    });
  }

  #scheduleSweep(): void {
    this.sched.at(this.sched.now() + 7, () => {
      this.sweepReads();
      this.#scheduleSweep();
    });
  }

  #scheduleCopier(): void {
    this.sched.at(this.sched.now() + 10, () => {
      const { A, B } = this.vts;
      if (A.powered && B.powered && A.inOperation && B.inOperation && !A.stopping && !B.stopping) {
        for (const vol of this.volumes) if (copyVolume(A.vols, B.vols, vol) || copyVolume(B.vols, A.vols, vol)) break;
      }
      this.check();
      this.#scheduleCopier();
    });
  }

  // ------------------------------------------------------------------ host writes

  /** A host write through a VTC (random unless given); returns false when it was refused at once. */
  hostWrite(o: { node?: VtcNode; vol?: string; primary?: VtsName; copyMode?: CopyMode; duration?: number } = {}): boolean {
    const alive = this.vtcs.filter((n) => n.alive);
    if (alive.length === 0) return false;
    const node = o.node ?? this.rng.pick(alive);
    if (!node.alive) return false;
    const ctx = node.engine.writeContext();
    const vol = o.vol ?? this.rng.pick(this.volumes);
    const tokens = {
      A: this.#usable(node.name, 'A') ? this.vts.A.vols.get(vol) ?? { generation: 0, consistent: true, dataGen: 0 } : undefined,
      B: this.#usable(node.name, 'B') ? this.vts.B.vols.get(vol) ?? { generation: 0, consistent: true, dataGen: 0 } : undefined,
    };
    const primary: VtsName = o.primary ?? (this.rng.next() < 0.5 ? 'A' : 'B');
    const plan = planWrite({ status: ctx.status, epoch: ctx.epoch, copyMode: o.copyMode ?? this.#copyMode.get(vol) ?? 'immediate', primary, tokens });
    if (!plan.ok) {
      this.counters.refused++;
      return false;
    }
    const inc = node.incarnation;
    const end = this.sched.now() + (o.duration ?? 1 + this.rng.next() * 20);
    // The VTS the host writes to: the production agent mounts there and closes there first.
    const hostVts = plan.targets.some((t) => t.vts === primary && t.data) ? primary : (plan.targets.find((t) => t.data)?.vts ?? primary);
    const fenced = (v: SimVts): boolean => (this.#legacy.unfencedCopies === true && v.name !== hostVts ? false : !v.admits(plan.epoch, ctx.epochMac, ctx.boots[v.name], ctx.minSeqs[v.name]));
    const mounts: [SimVts, Mount][] = plan.targets.map((t) => {
      const m: Mount = { aborted: false, end };
      this.vts[t.vts].mounts.add(m);
      return [this.vts[t.vts], m];
    });
    this.sched.at(end, () => {
      for (const [v, m] of mounts) v.mounts.delete(m);
      const ok =
        node.alive &&
        node.incarnation === inc &&
        mounts.every(([v, m]) => !m.aborted && v.powered && v.inOperation && this.vtsLinked(node.name, v.name) && !fenced(v) && (v.vols.get(vol)?.generation ?? 0) < plan.generation) &&
        writeStillCurrent(plan.epoch, plan.targets.filter((t) => t.data).map((t) => t.vts), node.engine.writeContext(), node.engine.newestKey().current);
      if (!ok) {
        this.counters.failedWrites++;
        this.note(`${node.name} write ${vol} failed`);
        return;
      }
      for (const t of plan.targets) applyWrite(this.vts[t.vts].vols, vol, plan.generation, t.data);
      this.#maxAcked.set(vol, Math.max(this.#maxAcked.get(vol) ?? 0, plan.generation));
      this.counters.acked++;
      this.note(`${node.name} ack write ${vol} gen ${plan.generation} on ${plan.targets.map((t) => `${t.vts}${t.data ? '' : '(token)'}`).join('+')} epoch ${plan.epoch} (${formatStatus(ctx.status)})`);
      this.#checkWriteTargets(plan.targets.filter((t) => t.data).map((t) => t.vts));
      this.check();
    });
    return true;
  }

  /**
   * A host read through a VTC, as the production agent does it (planRead over the tokens each
   * VTS gives under the VTC's epoch). The read is instantaneous here, so every write
   * acknowledged so far was acknowledged before it began: it must return at least that
   * generation, or be refused. Returns the generation served, or null when refused.
   */
  hostRead(o: { node?: VtcNode; vol?: string; quiet?: boolean } = {}): number | null {
    const alive = this.vtcs.filter((n) => n.alive);
    if (alive.length === 0) return null;
    const node = o.node ?? this.rng2.pick(alive);
    if (!node.alive) return null;
    const vol = o.vol ?? this.rng2.pick(this.volumes);
    const ctx = node.engine.writeContext();
    if (ctx.status.kind === 'offline') return null;
    const tokens: { A?: { generation: number; consistent: boolean; dataGeneration: number }; B?: { generation: number; consistent: boolean; dataGeneration: number } } = {};
    for (const x of VTS_NAMES) {
      if (!this.#usable(node.name, x)) continue;
      const v = this.vts[x];
      if (this.#legacy.preferredReads !== true && !v.admits(ctx.epoch, ctx.epochMac, ctx.boots[x], ctx.minSeqs[x])) return null;
      const c = v.vols.get(vol) ?? { generation: 0, consistent: true, dataGen: 0 };
      tokens[x] = { generation: c.generation, consistent: c.consistent, dataGeneration: c.dataGen };
    }
    let from: VtsName | undefined;
    if (this.#legacy.preferredReads === true) {
      // As before: any VTS whose token reads consistent, the preferred (A) first; only it fences the mount.
      const allowed: VtsName[] = ctx.status.kind === 'online-single' ? [ctx.status.vts] : ['A', 'B'];
      const holders = allowed.filter((x) => tokens[x]?.consistent === true && (tokens[x]?.dataGeneration ?? 0) > 0);
      from = holders.includes('A') ? 'A' : holders[0];
      if (from !== undefined && !this.vts[from].admits(ctx.epoch, ctx.epochMac, ctx.boots[from], ctx.minSeqs[from])) return null;
    } else {
      const p = planRead({ status: ctx.status, tokens });
      if (p.ok) from = o.quiet === true ? p.holders.reduce<VtsName>((a, x) => (this.vts[x].dataGen(vol) < this.vts[a].dataGen(vol) ? x : a), p.holders[0]!) : this.rng2.pick(p.holders);
    }
    if (from === undefined) return null;
    const served = this.vts[from].dataGen(vol);
    const acked = this.#maxAcked.get(vol) ?? 0;
    if (o.quiet !== true) this.note(`${node.name} read ${vol} gen ${served} from ${from} (${formatStatus(ctx.status)} key ${ctx.epoch}; newest acknowledged ${acked})`);
    if (served < acked) throw new InvariantViolation('stale-read', `${node.name} (${formatStatus(ctx.status)}, key ${ctx.epoch}) read ${vol} generation ${served} from VTS ${from}, but generation ${acked} was acknowledged before the read began`);
    return served;
  }

  /** What VTS `x`'s disks hold now (a backup to restore later). */
  imageOf(x: VtsName): VtsImage {
    return this.vts[x].image();
  }

  /**
   * Reads every volume through every VTC on-line, without drawing randomness or logging
   * (the VTS serving is the worst of those allowed): run often, so a VTC that would serve a
   * stale generation is caught even when no host happens to read that volume.
   */
  sweepReads(): void {
    for (const node of this.vtcs) if (node.alive && node.engine.status().kind !== 'offline') for (const vol of this.volumes) this.hostRead({ node, vol, quiet: true });
  }

  /** Both VTS lose power at the same instant. */
  powerLossBoth(): void {
    this.note('VTS A and B lose power together');
    this.vts.A.crash();
    this.vts.B.crash();
  }

  /**
   * VTS `x` (powered off) is restored from an older image. Acknowledged generations no VTS
   * holds any more are lost with it: the checker no longer asks for them on a VTS, but a read
   * must still never return anything older.
   */
  restoreVts(x: VtsName, img: VtsImage): void {
    if (this.vts[x].powered) throw new Error(`VTS ${x} must be powered off to restore an image`);
    this.note(`VTS ${x} restored from an image at key ${img.lastKeySeq}`);
    this.#restored.add(x);
    const before = [...this.#maxAcked].filter(([vol, gen]) => this.#holds(x, vol, gen));
    this.vts[x].restore(img);
    for (const [vol, gen] of before) if (!this.#holds(x, vol, gen)) this.#destroyed[x].add(`${vol}@${gen}`);
  }

  // ------------------------------------------------------------------ faults and commands

  /** Gives a command to a VTC (random unless given); returns the command id whose result lands in `results`. */
  command(cmd: OperatorCommand, at?: VtcNode): string {
    const alive = this.vtcs.filter((n) => n.alive);
    const node = at ?? (alive.length > 0 ? this.rng.pick(alive) : undefined);
    const id = `c${this.#cmdSeq++}`;
    if (node === undefined || !node.alive) return id;
    this.note(`operator -> ${node.name} ${id}: ${JSON.stringify(cmd)}`);
    this.#input(node, 'command', null, null, `${id} ${cmd.command}`);
    try {
      node.engine.command(id, cmd, this.sched.now());
    } catch (e) {
      if (e instanceof PtpError) throw new InvariantViolation('error-contract', `command threw instead of answering: ${e.message}`);
      throw e;
    }
    this.#drain(node);
    return id;
  }

  ballotsCast(): number {
    return this.vtcs.reduce((a, n) => a + n.engine.stats.ballotsCast, 0);
  }

  randomCommand(): OperatorCommand {
    const modes: Mode[] = ['normal', 'expedite', 'immediate', 'forced'];
    const x = this.rng.pick(VTS_NAMES);
    const r = this.rng.next();
    if (r < 0.4) return { command: 'vts-out', vts: x, mode: this.rng.pick(modes) };
    if (r < 0.65) return { command: 'vts-in', vts: x };
    if (r < 0.75) return { command: 'ptp-shutdown', mode: this.rng.pick(modes) };
    if (r < 0.85) return { command: 'ptp-start' };
    if (r < 0.93) {
      const n = this.names.length;
      return { command: 'threshold-set', threshold: Math.floor(n / 2) + this.rng.int(n - Math.floor(n / 2)) };
    }
    if (r < 0.97) return { command: 'threshold-set', threshold: this.rng.next() < 0.5 ? this.names.length : -1 };
    return { command: 'vts-out', vts: 'C', mode: 'normal' };
  }

  crashVtc(node: VtcNode): void {
    if (!node.alive) return;
    this.note(`${node.name} CRASH`);
    node.engine.stop();
    node.engine.takeEffects();
    node.alive = false;
    node.incarnation++;
    node.journal.crash();
    this.net.setDown(node.name, true);
  }

  restartVtc(node: VtcNode): void {
    if (node.alive) return;
    this.note(`${node.name} restart`);
    node.alive = true;
    node.incarnation++;
    this.net.setDown(node.name, false);
    node.engine = this.#newEngine(node.name);
    node.codec = this.#newCodec(node.name);
    this.#input(node, 'restore', null, null, '');
    node.engine.restore(node.journal.durable().map((b) => this.#signer.decodeRecord(b)), this.sched.now());
    this.#drain(node);
    this.#scheduleTick(node, node.incarnation, this.rng.int(this.timing.tick));
  }

  crashVts(x: VtsName): void {
    this.note(`VTS ${x} CRASH`);
    this.vts[x].crash();
  }
  powerOnVts(x: VtsName): void {
    if (!this.vts[x].powered) this.note(`VTS ${x} powered on`);
    this.vts[x].powerOn();
  }

  /** Frames an adversary without the cluster secret can produce: forged, replayed, redirected, from an unknown VTC, garbage. */
  adversary(): void {
    this.counters.adversaryFrames++;
    const to = this.rng.pick(this.names);
    const kind = this.rng.int(5);
    const now = this.sched.now();
    if (kind === 0) {
      const as = this.rng.pick(this.names.filter((n) => n !== to));
      const forger = new FrameCodec({ vtcs: this.names, self: as, mac: new SimMac(this.#forgerKey) }, 0);
      const b = new RecordSigner(this.keyring.forger('vtc0', new SimMac(this.#forgerKey))).sign({ ptpId: 'ptp1', election: { seq: 0, vts: 'A', round: 0 }, voter: 'vtc0', keySeq: 1e6, choice: 'yes', why: 'forged' });
      this.net.inject(to, forger.seal(to, new TextEncoder().encode(JSON.stringify({ t: 'ballot', ballot: b })), now));
      // The same adversary with the cluster secret: its frames pass, what it signs as a VTC must not.
      const insider = new FrameCodec({ vtcs: this.names, self: as, mac: this.mac }, 0);
      const forged = forgedMessage(this.counters.adversaryFrames, as, this.names, this.vtcs[0]!.engine.newestKey(), now, this.keyring.forger(as, this.mac));
      const f = insider.seal(to, new TextEncoder().encode(JSON.stringify(forged)), now);
      const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
      this.#insiderFrames.add(frameId(as, v.getBigUint64(21), to, v.getFloat64(9), v.getUint32(17)));
      this.net.inject(to, f);
    } else if (kind === 1 || kind === 2) {
      const c = this.captured.length > 0 ? this.rng.pick(this.captured) : undefined;
      if (c !== undefined) this.net.inject(kind === 1 ? c.to : to, c.frame, this.rng.next() * 300);
    } else if (kind === 3) {
      const outsider = new FrameCodec({ vtcs: [...this.names, 'intruder'], self: 'intruder', mac: this.mac }, 0);
      this.net.inject(to, outsider.seal(to, new TextEncoder().encode(JSON.stringify({ t: 'hello', hi: 1e6, top: 1e6, topMac: '' })), now));
    } else {
      const junk = new Uint8Array(this.rng.int(64));
      for (let i = 0; i < junk.length; i++) junk[i] = this.rng.int(256);
      this.net.inject(to, junk);
    }
  }

  // ------------------------------------------------------------------ invariants

  /**
   * The newest committed keys anywhere (every VTC's own view, crashed ones' durable view
   * included). Committed means held by more than T VTCs: a forced key that fewer hold is
   * recorded but cannot take the system on-line or carry writes.
   */
  newestKeys(): ShutdownKey[] {
    let top = -1;
    let keys: ShutdownKey[] = [];
    for (const n of this.vtcs) {
      const k = n.engine.newestStrongKey();
      if (k.seq > top) {
        top = k.seq;
        keys = [k];
      } else if (k.seq === top && !keys.some((x) => x.mac === k.mac)) keys.push(k);
    }
    return keys;
  }

  /** The newest chain head anywhere, strong or not (what recovery has to work from). */
  headKey(): ShutdownKey {
    let best = this.vtcs[0]!.engine.newestKey();
    for (const n of this.vtcs) if (n.engine.newestKey().seq > best.seq) best = n.engine.newestKey();
    return best;
  }

  #holds(x: VtsName, vol: string, gen: number): boolean {
    return this.vts[x].dataGen(vol) >= gen;
  }

  #checkWriteTargets(dataOn: VtsName[]): void {
    const keys = this.newestKeys();
    // current {} (neither VTS alone holds every write) is left only by both VTS returning and
    // reconciling their tokens, or an election of a VTS in current: a write landing on either
    // then is kept by the reconcile (decided here; check() treats current {} the same way).
    if (!keys.some((k) => k.current.length === 0 || dataOn.every((x) => k.current.includes(x)))) {
      throw new InvariantViolation('safety', `a write was acknowledged on {${dataOn.join(',')}} outside current of the newest key ${keys.map((k) => `${k.seq}:{${k.current.join(',')}}`).join(' / ')}`);
    }
  }

  /**
   * True when a VTS in current of the newest key (either, when current is empty) was restored
   * from an older image: the VTCs must then refuse to serve it alone (they cannot tell whether
   * the image lacks acknowledged writes), and only an operator can decide, so no liveness is owed.
   */
  restoredCurrent(): boolean {
    const cur = this.headKey().current;
    const where: VtsName[] = cur.length === 0 ? ['A', 'B'] : [...cur];
    return where.some((x) => this.#restored.has(x));
  }

  /** On `x`, or was until a restore destroyed it there (a restore is a fault of the disks, not of the protocol: reads catch what follows). */
  #held(x: VtsName, vol: string, gen: number): boolean {
    return this.#holds(x, vol, gen) || this.#destroyed[x].has(`${vol}@${gen}`);
  }

  check(): void {
    const acked = [...this.#maxAcked];
    for (const [vol, gen] of acked) {
      if (!this.#held('A', vol, gen) && !this.#held('B', vol, gen)) throw new InvariantViolation('safety', `acknowledged write ${vol} gen ${gen} is on no VTS`);
    }
    const keys = this.newestKeys();
    const ok = keys.some((k) => k.current.length === 0 || acked.every(([vol, gen]) => k.current.some((x) => this.#held(x, vol, gen))));
    if (!ok) {
      const k = keys[0]!;
      const missing = acked.filter(([vol, gen]) => !k.current.some((x) => this.#held(x, vol, gen)));
      throw new InvariantViolation('safety', `newest key ${k.seq} (${k.command} ${k.reason}) has current {${k.current.join(',')}} but acknowledged writes ${missing.map(([v, g]) => `${v}@${g}`).join(',')} are not on it`);
    }
    for (const n of this.vtcs) {
      const k = n.engine.newestKey();
      if (!this.#honestKeys.has(k.mac) && k.seq > 0) throw new InvariantViolation('security', `${n.name} committed a key no VTC made`);
      if ((k.reason === 'election' || k.election !== null) && !this.#checkedElectionKeys.has(k.mac)) {
        this.#checkedElectionKeys.add(k.mac);
        this.counters.elections++;
        const e = k.election;
        if (e === null) throw new InvariantViolation('agreement', `election key ${k.seq} names no election`);
        const cast = this.#yesCast.get(`${e.seq}:${e.vts}:${e.round}`) ?? new Set<string>();
        const real = e.yes.filter((v) => cast.has(v));
        if (new Set(real).size <= k.threshold || real.length !== e.yes.length) {
          throw new InvariantViolation('agreement', `key ${k.seq} placed ${e.vts} on-line with ${real.length} real YES ballot(s) in election ${e.seq}:${e.vts}:${e.round}, threshold ${k.threshold}`);
        }
      }
      if (n.alive) {
        const broken = n.engine.invariants();
        if (broken.length > 0) throw new InvariantViolation('engine-invariant', `${n.name}: ${broken.join('; ')}`);
        const s = n.engine.status();
        if (s.kind === 'online-single' && !k.current.includes(s.vts)) throw new InvariantViolation('safety', `${n.name} is ${formatStatus(s)} outside current of its own key ${k.seq}`);
      }
    }
  }

  // ------------------------------------------------------------------ running

  run(until: number): void {
    while (this.sched.step(until));
  }

  allOnline(): boolean {
    const alive = this.vtcs.filter((n) => n.alive);
    if (alive.length === 0) return false;
    const seq = alive[0]!.engine.newestKey().seq;
    return alive.every((n) => isOnline(n.engine.status()) && isStrong(n.engine.newestKey()) && n.engine.newestKey().seq === seq && !n.engine.inFlight());
  }

  describe(): string {
    return this.vtcs
      .map((n) => `${n.name}${n.alive ? '' : '(down)'} ${formatStatus(n.engine.status())} key ${n.engine.newestKey().seq} ${JSON.stringify(n.engine.heldSeqs())} chain ${n.engine.committedKeys().map((k) => `${k.seq}<${k.prevSeq}:${k.originVtc}:${k.command}:acks=${k.acks.length}`).join(' ')}`)
      .concat(VTS_NAMES.map((x) => `VTS ${x} powered=${this.vts[x].powered} inOp=${this.vts[x].inOperation} last=${this.vts[x].lastKeySeq} behind=${this.vts[x].view().behind.length}`))
      .join('\n');
  }
}
