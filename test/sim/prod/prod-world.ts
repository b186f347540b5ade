/**
 * The production-code world: n real {@link VtcAgent}s and two real VTS ({@link VtsServer}
 * over {@link VtsUnit}), unchanged, over the simulated network, clocks and disks of this
 * directory, all driven by one seeded scheduler. Hosts write and read volumes through the
 * agents' host API, the operator runs commands in every mode, and faults hit processes,
 * links, clocks and disks. Every host operation goes into a history for the checker.
 */
import { generateKeyPairSync } from 'node:crypto';
import { pino } from 'pino';
import { KeyJournalRef } from '../../../src/hotpath/key-journal-ref.js';
import { HmacSha256 } from '../../../src/ptp/mac.js';
import { SeededRandom } from '../../../src/ptp/random.js';
import { formatStatus, VTS_NAMES } from '../../../src/ptp/types.js';
import type { Mode, VtsName } from '../../../src/ptp/types.js';
import type { CopyMode } from '../../../src/ptp/volumes.js';
import type { Timing } from '../../../src/ptp/engine.js';
import { VtcAgent } from '../../../src/vtc/agent.js';
import type { AgentEvent } from '../../../src/vtc/agent.js';
import { participants } from '../../../src/vtc/rpc.js';
import { VtsServer } from '../../../src/vtc/vts-server.js';
import { VtsUnit } from '../../../src/vts/index.js';
import { SimKeyring } from '../sim-mac.js';
import { checkHistory, payloadFor, writerOf } from './history.js';
import type { HostOp, KeyEvent, ReadOp, Violation, WriteOp } from './history.js';
import { SimFs } from './sim-fs.js';
import type { CutMode, SimFsImage, SimFsOp } from './sim-fs.js';
import { SimNet } from './sim-net.js';
import { SimOs } from './sim-os.js';
import type { SimProcess } from './sim-os.js';

/** A process's disk and how its operations complete (delays, a hung disk). */
interface Disk {
  readonly fs: SimFs;
  /** Extra ms every operation takes (a slow disk). */
  slowMs: number;
  /** While set, operations wait here (a hung disk) until released. */
  held: (() => void)[] | null;
  /** Removes an injected fault (disk full). */
  unfault: (() => void) | null;
  /** The first operation this matches hangs the disk from there on (until released, as `held`). */
  hangOn: ((op: SimFsOp) => boolean) | null;
}
/** Timing for the simulation: short windows, so a schedule covers many protocol rounds. */
export const PROD_TIMING: Timing = {
  tick: 50,
  heartbeatTimeout: 160,
  ackTimeout: 200,
  vtsOpTimeout: 600,
  returnGrace: 150,
  electionTimeout: 300,
  pendingTimeout: 700,
  helloInterval: 400,
  expediteTimeout: 60,
  stagger: 40,
};

const SECRET = 'ptpvts production simulation secret';
const VTS_PORT = 9000;
const VTC_PORT = 7000;
const vtsHost = (x: VtsName): string => `vts-${x}`;
const silent = pino({ level: 'silent' });
// The control endpoint is off in the simulation; the agent still needs an operator key to hold.
const OPERATOR_KEY = generateKeyPairSync('ed25519').publicKey;

export interface ProdWorldOptions {
  readonly seed: number;
  readonly n: number;
  readonly timing?: Timing;
  /** Real Ed25519 keys derived from the seed, or (default) the cheaper keyed tags of test/sim (signing is injected: the engine's checks are the same). */
  readonly ed25519?: boolean;
  readonly volumes?: number;
  /** The VTCs' `tee` option (default: theirs, on). */
  readonly tee?: boolean;
}

interface VtcNode {
  readonly name: string;
  readonly proc: SimProcess;
  readonly disk: Disk;
  agent: VtcAgent | null;
  runs: number;
  starting: boolean;
}

interface VtsNode {
  readonly name: VtsName;
  readonly proc: SimProcess;
  readonly disk: Disk;
  unit: VtsUnit | null;
  server: VtsServer | null;
  starting: boolean;
  /** Durable images taken during the run, to restore an older one. */
  readonly images: { at: number; image: SimFsImage; dataGen: Map<string, number> }[];
  /** `vol@gen` acknowledged copies a restore destroyed here. */
  readonly destroyed: Set<string>;
  restored: boolean;
  /** Each restore: when, and the data generations of the image it brought back. */
  readonly restores: { readonly at: number; readonly dataGen: ReadonlyMap<string, number> }[];
}

export interface WorldCounters {
  writes: number;
  writesAcked: number;
  writesFailed: number;
  reads: number;
  readsOk: number;
  commands: number;
  commandsOk: number;
  faults: number;
  unknown: number;
}

export class ProdWorld {
  readonly os = new SimOs();
  readonly rng: SeededRandom;
  readonly net: SimNet;
  readonly names: string[];
  readonly vtcs: VtcNode[];
  readonly vts: Record<VtsName, VtsNode>;
  readonly timing: Timing;
  readonly tee: boolean | undefined;
  readonly keyring: SimKeyring;
  readonly ops: HostOp[] = [];
  readonly keys: KeyEvent[] = [];
  readonly trace: string[] = [];
  readonly faultCounts: Record<string, number> = {};
  readonly counters: WorldCounters = { writes: 0, writesAcked: 0, writesFailed: 0, reads: 0, readsOk: 0, commands: 0, commandsOk: 0, faults: 0, unknown: 0 };
  readonly volumes: string[];
  readonly #busy = new Set<string>();
  readonly #writeIndex = new Map<string, number>();
  readonly #pending = new Map<string, Set<HostOp>>();
  /** Operations whose VTC crashed under them: their outcome stays unknown. */
  readonly #lost = new Set<HostOp>();
  #nextOp = 1;
  #topSeq = 0;
  /** Engine invariants found broken (VtcEngine.invariants, checked after every event): the first of each VTC. */
  readonly #engineViolations: Violation[] = [];
  readonly #brokenEngines = new Set<string>();

  constructor(o: ProdWorldOptions) {
    this.rng = new SeededRandom(o.seed);
    this.net = new SimNet(this.os, new SeededRandom(o.seed ^ 0x5bd1e995));
    this.timing = o.timing ?? PROD_TIMING;
    this.tee = o.tee;
    this.names = Array.from({ length: o.n }, (_, i) => `vtc${i + 1}`);
    this.keyring = new SimKeyring(o.seed, this.names, o.ed25519 === true);
    this.volumes = Array.from({ length: o.volumes ?? 4 }, (_, i) => `V${String(i + 1).padStart(5, '0')}`);
    this.vtcs = this.names.map((name) => {
      const proc = this.os.process(name);
      return { name, proc, disk: this.#disk(proc), agent: null, runs: 0, starting: false };
    });
    const mk = (x: VtsName): VtsNode => {
      const proc = this.os.process(vtsHost(x));
      return { name: x, proc, disk: this.#disk(proc), unit: null, server: null, starting: false, images: [], destroyed: new Set(), restored: false, restores: [] };
    };
    this.vts = { A: mk('A'), B: mk('B') };
    this.os.afterEvent = () => this.#checkEngines();
  }

  /** Every running agent's engine invariants, after an event: a broken one fails the schedule (see check). */
  #checkEngines(): void {
    for (const v of this.vtcs) {
      const broken = v.agent?.engine.invariants() ?? [];
      if (broken.length > 0 && !this.#brokenEngines.has(v.name)) {
        this.#brokenEngines.add(v.name);
        this.#engineViolations.push({ code: 'engine-invariant', message: `${v.name} at ${this.os.sched.now().toFixed(1)} ms: ${broken.join('; ')}` });
        this.note(`${v.name} engine invariant broken: ${broken.join('; ')}`);
      }
    }
  }

  /** A disk whose operations complete in its process, after a seeded delay (plus any slowness), in issue order. */
  #disk(proc: SimProcess): Disk {
    const rnd = new SeededRandom(this.rng.int(2 ** 31));
    let last = 0;
    const d: Disk = {
      slowMs: 0,
      held: null,
      unfault: null,
      hangOn: null,
      fs: new SimFs({
        random: new SeededRandom(this.rng.int(2 ** 31)),
        complete: (op, run) => {
          if (d.hangOn?.(op) === true) {
            d.hangOn = null;
            d.held ??= [];
          }
          const go = (): void => {
            const at = Math.max(last, this.os.sched.now() + 0.01 + rnd.next() * 0.2 + d.slowMs);
            last = at;
            this.os.post(proc, at, run);
          };
          if (d.held !== null) d.held.push(go);
          else go();
        },
      }),
    };
    return d;
  }

  get now(): number {
    return this.os.sched.now();
  }

  note(s: string): void {
    this.trace.push(`${this.now.toFixed(3)} ${s}`);
  }

  fault(kind: string, s: string): void {
    this.counters.faults++;
    this.faultCounts[kind] = (this.faultCounts[kind] ?? 0) + 1;
    this.note(`FAULT ${kind}: ${s}`);
  }

  // ------------------------------------------------------------------ processes

  startVts(x: VtsName): void {
    const node = this.vts[x];
    if (node.server !== null || node.starting) return;
    node.starting = true;
    const p = node.proc;
    p.alive = true;
    this.net.powerBack(p.name);
    const inc = p.incarnation;
    const clock = this.os.clock(p);
    const rnd = new SeededRandom(this.rng.int(2 ** 31));
    const randomBytes = (size: number): Buffer => Buffer.from(Array.from({ length: size }, () => rnd.int(256)));
    void (async () => {
      try {
        const unit = await VtsUnit.open({ id: x, cacheDir: `/${vtsHost(x)}/cache`, stateDir: `/${vtsHost(x)}/state`, fs: node.disk.fs, now: () => clock.now(), randomBytes, logger: silent });
        if (p.incarnation !== inc) return;
        const server = new VtsServer({ unit, name: x, security: { names: participants(this.names), mac: new HmacSha256(SECRET) }, logger: silent, env: { net: this.net.platform(p), clock } });
        await server.listen(vtsHost(x), VTS_PORT);
        if (p.incarnation !== inc) return;
        node.unit = unit;
        node.server = server;
        this.note(`VTS ${x} up (in operation ${String(unit.inOperation)}, last key ${unit.lastKeySeq})`);
      } catch (e) {
        this.note(`VTS ${x} failed to start: ${(e as Error).message}`);
      } finally {
        if (p.incarnation === inc) node.starting = false;
      }
    })();
  }

  /** `powerLoss`: the disk loses what was not synced and peers hear nothing; otherwise the process dies and its kernel resets its connections. */
  crashVts(x: VtsName, powerLoss: boolean): void {
    const node = this.vts[x];
    const p = node.proc;
    if (!p.alive) return;
    p.alive = false;
    p.incarnation++;
    node.starting = false;
    node.unit = null;
    node.server = null;
    if (powerLoss) {
      this.net.powerLost(p.name);
      this.#cut(node.disk);
    } else this.net.processCrashed(p.name);
    this.fault(powerLoss ? 'vts-power-loss' : 'vts-crash', `VTS ${x}`);
  }

  #cut(d: Disk): void {
    const mode: CutMode = this.rng.pick(['drop', 'prefix', 'pages'] as const);
    d.held = null;
    d.hangOn = null;
    d.slowMs = 0;
    d.fs.powerCut({ mode });
  }

  /** Keeps the VTS's durable state now, to come back to later as a restored image. */
  imageVts(x: VtsName): void {
    const node = this.vts[x];
    if (node.unit === null) return;
    node.images.push({ at: this.now, image: node.disk.fs.snapshot(), dataGen: new Map(node.unit.volumes().map((v) => [v.volser, v.dataGeneration])) });
  }

  /** The VTS is down: its disk comes back as an image taken earlier. */
  restoreVts(x: VtsName): boolean {
    const node = this.vts[x];
    const img = node.images[0];
    if (img === undefined || node.proc.alive) return false;
    node.disk.fs.restore(img.image);
    node.restored = true;
    // What the restore destroyed: acknowledged data newer than the image is gone from here.
    // A write in flight at the restore whose copy here was made before it (its answer came
    // after) is counted when it is acknowledged (seed 602).
    for (const o of this.ops) if (o.kind === 'write' && o.outcome === 'ok' && o.copies.includes(x) && (img.dataGen.get(o.volser) ?? 0) < (o.generation ?? 0)) node.destroyed.add(`${o.volser}@${o.generation}`);
    node.restores.push({ at: this.now, dataGen: img.dataGen });
    this.fault('vts-restored-image', `VTS ${x} restored to its image of ${img.at.toFixed(0)} ms`);
    return true;
  }

  /** Starts VTC `node`; `io` fixes how it picks the VTS for host I/O (default: drawn from the seed). */
  startVtc(node: VtcNode, io?: { readonly ioSelection?: 'preferred' | 'balanced'; readonly preferredVts?: VtsName; /** A topology of its own (mismatched configuration): the VTC list this VTC is given. */ readonly vtcs?: readonly string[] }): void {
    if (node.agent !== null || node.starting) return;
    node.starting = true;
    const p = node.proc;
    p.alive = true;
    this.net.powerBack(p.name);
    const inc = p.incarnation;
    const run = ++node.runs;
    const rnd = new SeededRandom(this.rng.int(2 ** 31));
    const peers = Object.fromEntries(this.names.filter((v) => v !== node.name).map((v) => [v, { host: v, port: VTC_PORT }]));
    // Drawn even when `io` fixes them, so the rest of the seed's schedule stays the same.
    const drawnIo = this.rng.next() < 0.5 ? 'preferred' : 'balanced';
    const drawnPreferred: VtsName = this.rng.next() < 0.5 ? 'A' : 'B';
    void VtcAgent.start({
      ptpId: 'sim',
      vtcs: io?.vtcs ?? this.names,
      self: node.name,
      secret: SECRET,
      keys: this.keyring.forVtc(node.name),
      operatorKey: OPERATOR_KEY,
      listen: { host: node.name, port: VTC_PORT },
      control: null,
      peers,
      vts: { A: { host: vtsHost('A'), port: VTS_PORT }, B: { host: vtsHost('B'), port: VTS_PORT } },
      journalDir: `/${node.name}/journal`,
      timing: this.timing,
      ioSelection: io?.ioSelection ?? drawnIo,
      preferredVts: io?.preferredVts ?? drawnPreferred,
      logger: silent,
      rpcTimeoutMs: 400,
      ...(this.tee === undefined ? {} : { tee: this.tee }),
      platform: {
        net: this.net.platform(p),
        clock: this.os.clock(p),
        random: () => rnd.next(),
        runId: () => `${node.name}-run${run}`,
        openJournal: (path, o) => KeyJournalRef.open(path, { ...o, fs: node.disk.fs }),
      },
    }).then(
      (agent) => {
        if (p.incarnation !== inc) return;
        node.agent = agent;
        node.starting = false;
        agent.on('event', (e: AgentEvent) => this.#onEvent(node, e));
        agent.on('fatal', (e: unknown) => this.note(`${node.name} fatal: ${(e as Error).message}`));
        this.note(`${node.name} up (run ${run}, key ${agent.engine.newestKey().seq})`);
      },
      (e: unknown) => {
        if (p.incarnation !== inc) return;
        node.starting = false;
        this.note(`${node.name} failed to start: ${(e as Error).message}`);
      },
    );
  }

  crashVtc(node: VtcNode, powerLoss: boolean): void {
    const p = node.proc;
    if (!p.alive) return;
    p.alive = false;
    p.incarnation++;
    node.agent = null;
    node.starting = false;
    if (powerLoss) {
      this.net.powerLost(p.name);
      this.#cut(node.disk);
    } else this.net.processCrashed(p.name);
    // What its hosts had in flight has no answer: outcome unknown.
    for (const op of this.#pending.get(node.name) ?? []) {
      this.#lost.add(op);
      this.counters.unknown++;
      if (op.kind === 'write') this.#busy.delete(op.volser);
    }
    this.#pending.delete(node.name);
    this.fault(powerLoss ? 'vtc-power-loss' : 'vtc-crash', node.name);
  }

  #onEvent(node: VtcNode, e: AgentEvent): void {
    if (e.kind === 'key') {
      this.note(`${node.name} key ${e.key.seq} ${e.key.command} ${e.key.mode} current {${e.key.current.join(',')}} ${e.key.state}`);
      if (e.key.seq > this.#topSeq) {
        this.#topSeq = e.key.seq;
        this.keys.push({ at: this.now, seq: e.key.seq, current: e.key.current });
      }
    } else if (e.kind === 'status') this.note(`${node.name} status ${formatStatus(e.status)} (key ${e.seq})`);
  }

  liveAgents(): VtcNode[] {
    return this.vtcs.filter((v) => v.agent !== null && v.proc.alive);
  }

  // ------------------------------------------------------------------ hosts and operator

  #track(vtc: string, op: HostOp): void {
    let s = this.#pending.get(vtc);
    if (s === undefined) {
      s = new Set();
      this.#pending.set(vtc, s);
    }
    s.add(op);
    this.ops.push(op);
  }

  #settled(node: VtcNode, inc: number, op: HostOp): boolean {
    if (node.proc.incarnation !== inc || this.#lost.has(op)) return false;
    this.#pending.get(node.name)?.delete(op);
    op.end = this.now;
    return true;
  }

  /** A host write of a free volume (`vol`, default a random one) through `via` (default a random live VTC), in `mode` (default random). */
  hostWrite(via?: VtcNode, mode?: CopyMode, vol?: string): WriteOp | null {
    const live = this.liveAgents();
    const free = this.volumes.filter((v) => !this.#busy.has(v));
    if (live.length === 0 || free.length === 0 || (vol !== undefined && !free.includes(vol))) return null;
    const node = via ?? this.rng.pick(live);
    const agent = node.agent;
    if (agent === null) return null;
    const volser = vol ?? this.rng.pick(free);
    const copyMode: CopyMode = mode ?? (this.rng.next() < 0.5 ? 'immediate' : 'deferred');
    const index = (this.#writeIndex.get(volser) ?? 0) + 1;
    this.#writeIndex.set(volser, index);
    const op: WriteOp = { kind: 'write', id: this.#nextOp++, vtc: node.name, volser, start: this.now, end: null, outcome: 'unknown', generation: null, copies: [], error: null, index };
    this.#busy.add(volser);
    this.#track(node.name, op);
    this.counters.writes++;
    this.note(`W${op.id} ${volser} via ${node.name} (${copyMode}) begins`);
    const inc = node.proc.incarnation;
    agent.writeVolume(volser, payloadFor(volser, op.id, 16 + this.rng.int(600)), { copyMode }).then(
      (r) => {
        if (!this.#settled(node, inc, op)) return;
        op.outcome = 'ok';
        op.generation = r.generation;
        op.copies = r.copies;
        // Its copy on a VTS restored while it was in flight was made before the restore (a
        // mount does not survive the restart): the restore destroyed it there.
        for (const x of r.copies) {
          const n = this.vts[x];
          if (n.restores.some((rs) => rs.at >= op.start && (rs.dataGen.get(volser) ?? 0) < r.generation)) n.destroyed.add(`${volser}@${r.generation}`);
        }
        this.#busy.delete(volser);
        this.counters.writesAcked++;
        this.note(`W${op.id} ${volser} acknowledged gen ${r.generation} copies {${r.copies.join(',')}} queued {${r.queued.join(',')}}`);
      },
      (e: unknown) => {
        if (!this.#settled(node, inc, op)) return;
        op.outcome = 'fail';
        op.error = (e as { code?: string }).code ?? (e as Error).name;
        this.#busy.delete(volser);
        this.counters.writesFailed++;
        this.note(`W${op.id} ${volser} failed: ${op.error}`);
      },
    );
    return op;
  }

  hostRead(volser?: string, via?: VtcNode): ReadOp | null {
    const live = this.liveAgents();
    if (live.length === 0) return null;
    const node = via ?? this.rng.pick(live);
    const agent = node.agent;
    if (agent === null) return null;
    const v = volser ?? this.rng.pick(this.volumes);
    const op: ReadOp = { kind: 'read', id: this.#nextOp++, vtc: node.name, volser: v, start: this.now, end: null, outcome: 'unknown', wrote: null, vts: null, error: null };
    this.#track(node.name, op);
    this.counters.reads++;
    const inc = node.proc.incarnation;
    agent.readVolume(v).then(
      (r) => {
        if (!this.#settled(node, inc, op)) return;
        op.outcome = 'ok';
        op.vts = r.vts;
        op.wrote = writerOf(v, r.data);
        this.counters.readsOk++;
        this.note(`R${op.id} ${v} via ${node.name} from ${r.vts}: write ${String(op.wrote)}`);
      },
      (e: unknown) => {
        if (!this.#settled(node, inc, op)) return;
        op.outcome = 'fail';
        op.error = (e as { code?: string }).code ?? (e as Error).name;
      },
    );
    return op;
  }

  command(cmd: Parameters<VtcAgent['command']>[0], via?: VtcNode): void {
    const live = this.liveAgents();
    if (live.length === 0) return;
    const node = via ?? this.rng.pick(live);
    const agent = node.agent!;
    this.counters.commands++;
    const what = JSON.stringify(cmd);
    this.note(`CMD ${node.name} ${what}`);
    agent.command(cmd, 3000).then(
      (k) => {
        this.counters.commandsOk++;
        this.note(`CMD ${node.name} ${what} -> key ${k.seq}`);
      },
      (e: unknown) => this.note(`CMD ${node.name} ${what} failed: ${(e as { code?: string }).code ?? (e as Error).name}`),
    );
  }

  randomMode(): Mode {
    return this.rng.pick(['normal', 'expedite', 'immediate', 'forced'] as const);
  }

  // ------------------------------------------------------------------ faults and healing

  heal(): void {
    this.net.heal();
  }

  /** `slow`: every operation of the VTS's disk takes 20..200 ms more; `hung`: they wait until released; `full`: writes fail ENOSPC; `none`: back to normal. */
  diskFault(x: VtsName, kind: 'slow' | 'hung' | 'full' | 'none'): void {
    const d = this.vts[x].disk;
    if (kind === 'none') {
      d.slowMs = 0;
      d.hangOn = null;
      const held = d.held;
      d.held = null;
      for (const go of held ?? []) go();
      if (d.unfault !== null) {
        d.unfault();
        d.unfault = null;
        // A failed save leaves the VTS's state file refusing until the VTS is reopened
        // (slot-file.ts): the operator restarts it once space is back.
        if (this.vts[x].proc.alive) {
          this.crashVts(x, false);
          this.startVts(x);
        }
      }
      return;
    }
    this.fault(`vts-disk-${kind}`, `VTS ${x}`);
    if (kind === 'slow') d.slowMs = 20 + this.rng.int(180);
    else if (kind === 'hung') d.held ??= [];
    else d.unfault ??= d.fs.inject({ ops: ['write'], code: 'ENOSPC' });
  }

  /**
   * The disk of VTS `x` hangs from the first operation `match` accepts on (that one
   * included): a story's way to stop a VTS at an exact step, e.g. the fsync of a commit.
   * `diskFault(x, 'none')` releases it.
   */
  hangDiskOn(x: VtsName, match: (op: SimFsOp) => boolean): void {
    this.vts[x].disk.hangOn = match;
  }

  /** Operations waiting on the hung disk of VTS `x` (0 when it is not hung). */
  diskHeld(x: VtsName): number {
    return this.vts[x].disk.held?.length ?? 0;
  }

  /** Process `name` stops for `ms` (a GC pause, a stopped VM): its timers and deliveries wait. */
  pause(name: string, ms: number): void {
    const p = this.os.process(name);
    p.pausedUntil = Math.max(p.pausedUntil, this.now + ms);
    this.fault('process-pause', `${name} for ${ms} ms`);
  }

  skew(name: string, ms: number): void {
    this.os.process(name).skewMs = ms;
    this.fault('clock-skew', `${name} ${ms > 0 ? '+' : ''}${ms} ms`);
  }

  /** Ends every fault: links, disks, pauses; starts every process that is down. */
  healAll(): void {
    this.net.heal();
    for (const x of VTS_NAMES) this.diskFault(x, 'none');
    for (const p of this.os.processes.values()) p.pausedUntil = Math.min(p.pausedUntil, this.now);
    for (const x of VTS_NAMES) this.startVts(x);
    for (const v of this.vtcs) this.startVtc(v);
  }

  /** What an operator does to bring the system back: start what is down, put VTS out of operation back in. */
  nudge(): void {
    for (const x of VTS_NAMES) if (!this.vts[x].proc.alive || (this.vts[x].server === null && !this.vts[x].starting)) this.startVts(x);
    for (const v of this.vtcs) if (v.agent === null) this.startVtc(v);
    const via = this.liveAgents()[0];
    if (via === undefined || via.agent!.engine.status().kind === 'online-both') return;
    // Out per the newest key, or out per the VTS itself (it never recorded that key).
    const k = via.agent!.engine.newestKey();
    const out = VTS_NAMES.filter((x) => this.vts[x].unit !== null && (k.status[x] !== 'in' || !this.vts[x].unit!.inOperation));
    if (out.length === 2) this.command({ command: 'ptp-start' }, via);
    else for (const x of out) this.command({ command: 'vts-in', vts: x }, via);
  }

  // ------------------------------------------------------------------ state for the checker

  /** The newest key any live agent holds. */
  newestKey(): { seq: number; current: readonly VtsName[] } | null {
    let best: { seq: number; current: readonly VtsName[] } | null = null;
    for (const v of this.liveAgents()) {
      const k = v.agent!.engine.newestKey();
      if (best === null || k.seq > best.seq) best = { seq: k.seq, current: k.current };
    }
    return best;
  }

  /**
   * A VTS in current of the newest key (either, when current is empty) came back as a restored
   * older image: the VTCs must refuse to serve it alone, and only the operator can decide
   * (docs/protocol-notes.md), so no liveness is owed.
   */
  restoredCurrent(): boolean {
    const k = this.newestKey();
    const cur: readonly VtsName[] = k === null || k.current.length === 0 ? VTS_NAMES : k.current;
    return cur.some((x) => this.vts[x].restored);
  }

  allOnlineBoth(): boolean {
    const live = this.liveAgents();
    return live.length === this.vtcs.length && live.every((v) => v.agent!.engine.status().kind === 'online-both') && VTS_NAMES.every((x) => this.vts[x].unit?.inOperation === true);
  }

  /**
   * Per volume, the newest data generation a VTS in current of the newest key holds (or held
   * until a restore destroyed it); null when current is empty (both VTS returning: the
   * reconcile decides) or a VTS in it is not running.
   */
  finalState(): Map<string, number> | null {
    const k = this.newestKey();
    if (k === null || k.current.length === 0) return null;
    const out = new Map<string, number>();
    for (const x of k.current) {
      const node = this.vts[x];
      if (node.unit === null) return null;
      for (const v of node.unit.volumes()) out.set(v.volser, Math.max(out.get(v.volser) ?? 0, v.dataGeneration));
      for (const d of node.destroyed) {
        const [vol, gen] = d.split('@') as [string, string];
        out.set(vol, Math.max(out.get(vol) ?? 0, Number(gen)));
      }
    }
    return out;
  }

  check(final: boolean): Violation[] {
    return [...this.#engineViolations, ...checkHistory(this.ops, this.keys, final ? this.finalState() : null)];
  }

  describe(): string {
    const lines: string[] = [];
    for (const v of this.vtcs) {
      const a = v.agent;
      lines.push(`${v.name}: ${a === null ? (v.proc.alive ? 'starting' : 'down') : `${formatStatus(a.engine.status())} key ${a.engine.newestKey().seq} {${a.engine.newestKey().current.join(',')}}`}`);
    }
    for (const x of VTS_NAMES) {
      const u = this.vts[x].unit;
      lines.push(`VTS ${x}: ${u === null ? 'down' : `${u.inOperation ? 'in' : 'out'} last key ${u.lastKeySeq} ${u.volumes().map((v) => `${v.volser}:${v.token.generation}/${v.dataGeneration}`).join(' ')}`}`);
    }
    return lines.join('\n');
  }
}
