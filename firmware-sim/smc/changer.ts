/**
 * The changer's firmware state and robotics: what each element holds, the doors, medium
 * removal prevention, the robot (one medium transport, one motion at a time), the move
 * hook and injected faults. SCSI commands and operator actions both act through this
 * model; it raises CHECK CONDITION (`CheckCondition`) itself because the sense of a
 * failed motion is decided where the motion fails. Field pointers name CDB bytes the
 * caller passes in, so the model does not know CDB layouts.
 */
import { Sense, SenseKey, sense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { InsertRefused, type CartridgeRef, type DriveBay } from '../engine/library-link.js';
import { CommandAborted, mechanicalDelay } from '../engine/timing.js';
import type { LibraryPersonality } from '../personalities/libraries.js';
import { ElementKind, ElementMap, type ElementInfo, type ElementLayout } from './elements.js';
import { describeAction, tagMatches, type TagKind, type VolumeTagValue, type VolumeTemplate } from './volume-tags.js';

/**
 * Volume tags given to a cartridge besides its label: an alternate tag, and a primary tag
 * that overrides the label (SEND VOLUME TAG replace). Kept by the cartridge's label
 * barcode, so they follow it through moves.
 */
export interface AssignedVolumeTags {
  readonly primary?: VolumeTagValue;
  readonly alternate?: VolumeTagValue;
}

/** The volume tags READ ELEMENT STATUS reports for a cartridge. */
export interface ReportedVolumeTags {
  readonly primary: VolumeTagValue;
  readonly alternate?: VolumeTagValue;
}

/** A translate request of SEND VOLUME TAG, kept per initiator for REQUEST VOLUME ELEMENT ADDRESS. */
export interface Translation {
  readonly action: number;
  readonly start: number;
  readonly template: VolumeTemplate;
}

/** What an element holds. */
export interface Occupant {
  readonly cartridge: CartridgeRef;
  /** Last storage or import/export element the cartridge was moved from (SVALID). */
  readonly source?: number;
  /** In an import/export element: placed there by the operator (IMPEXP = 1), not by the robot. */
  readonly imported?: boolean;
}

/** One robot motion, as the move hook sees it. */
export interface MoveEvent {
  readonly library: string;
  readonly source: number;
  readonly destination: number;
  readonly sourceKind: ElementKind;
  readonly destinationKind: ElementKind;
  readonly barcode: string;
  readonly mediaType: string;
  /** `move` for MOVE MEDIUM; `exchange-1`/`exchange-2` for the two legs of EXCHANGE MEDIUM. */
  readonly operation: 'move' | 'exchange-1' | 'exchange-2';
}

/**
 * Runs before every robot motion, after the changer has checked the move and before the
 * cartridge leaves its element. Resolving lets the motion go ahead. Throwing (or
 * rejecting) vetoes it: nothing moves, and the command fails with the sense of a
 * {@link MoveVetoed} or, for any other error, HARDWARE ERROR / MECHANICAL POSITIONING
 * ERROR. `signal` aborts when the command is aborted (task management, transport timeout
 * or power cycle); a hook should then stop and reject. A hook that never settles holds the
 * robot until the command is aborted.
 */
export type MoveHook = (event: MoveEvent, signal: AbortSignal) => void | Promise<void>;

/** A veto from a move hook carrying the sense the command should fail with. */
export class MoveVetoed extends Error {
  override readonly name = 'MoveVetoed';
  readonly code = 'EMOVEVETOED';
  constructor(
    message: string,
    readonly sense: SenseData = senseOf(Sense.MECHANICAL_POSITIONING_ERROR),
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An operator action the library refuses (door locked, slot full, ...). */
export class OperatorActionError extends Error {
  override readonly name = 'OperatorActionError';
  constructor(
    readonly code: 'door-locked' | 'door-closed' | 'element-full' | 'element-empty' | 'no-such-element' | 'duplicate-barcode' | 'invalid-cartridge',
    message: string,
  ) {
    super(message);
  }
}

export type DoorName = 'import-export' | 'library';

export interface ChangerDrive {
  readonly address: number;
  readonly bay: DriveBay;
  /** LUN of the drive on the same target, reported with LU VALID in element descriptors. */
  readonly lun?: number;
}

export interface ChangerModelOptions {
  readonly name: string;
  readonly personality: LibraryPersonality;
  readonly layout: ElementLayout;
  readonly drives: readonly ChangerDrive[];
  /**
   * Cartridges present at power-on. Those in data transfer elements must already be in
   * their drive (inserted by whoever built the library).
   */
  readonly initial?: ReadonlyArray<{ readonly address: number; readonly cartridge: CartridgeRef; readonly volumeTags?: AssignedVolumeTags }>;
  readonly timeScale?: number;
}

/** CDB byte offsets of the element address fields, for field pointers. */
export interface FieldBytes {
  readonly transport?: number;
  readonly source?: number;
  readonly destination?: number;
  readonly second?: number;
}

type Listener = (code: SenseCode) => void;

function senseOf(code: SenseCode, extra: Omit<SenseData, 'key' | 'asc' | 'ascq'> = {}): SenseData {
  return sense(code, extra);
}

function fail(code: SenseCode, byte?: number): never {
  throw new CheckCondition(sense(code, byte === undefined ? {} : { fieldPointer: { inCdb: true, byte, bit: 7 } }));
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`;
}

/** ILLEGAL REQUEST with ASC 30h: the drive does not take this cartridge type. */
const INCOMPATIBLE_FOR_DRIVE: SenseData = { ...sense(Sense.INCOMPATIBLE_MEDIUM_INSTALLED), key: SenseKey.ILLEGAL_REQUEST };

export class ChangerModel {
  readonly name: string;
  readonly personality: LibraryPersonality;
  readonly elements: ElementMap;
  timeScale: number;
  private readonly contents = new Map<number, Occupant>();
  private readonly drives = new Map<number, ChangerDrive>();
  private readonly preventers = new Set<string>();
  private readonly hooks: MoveHook[] = [];
  private readonly listeners = new Set<Listener>();
  private doors: Record<DoorName, 'open' | 'closed'> = { 'import-export': 'closed', library: 'closed' };
  private robotChain: Promise<unknown> = Promise.resolve();
  private jamsPending = 0;
  private calibrating = 0;
  private stale = false;
  private powering: Promise<void> = Promise.resolve();
  private position: number;
  private readonly stats = { moves: 0, exchanges: 0, failures: 0 };
  private readonly assigned = new Map<string, AssignedVolumeTags>();
  private readonly translations = new Map<string, Translation>();

  constructor(o: ChangerModelOptions) {
    this.name = o.name;
    this.personality = o.personality;
    this.elements = new ElementMap(o.layout);
    this.timeScale = o.timeScale ?? 0;
    this.position = this.elements.defaultTransport;
    for (const d of o.drives) {
      const e = this.elements.get(d.address);
      if (e?.kind !== ElementKind.dataTransfer) throw new RangeError(`drive at ${hex(d.address)} is not a data transfer element`);
      this.drives.set(d.address, d);
    }
    for (const { address, cartridge, volumeTags } of o.initial ?? []) {
      const e = this.elements.get(address);
      if (!e || e.kind === ElementKind.transport) throw new RangeError(`cannot start a cartridge in ${hex(address)}`);
      if (this.contents.has(address)) throw new RangeError(`element ${hex(address)} is given two cartridges`);
      this.contents.set(address, { cartridge });
      if (volumeTags) this.restoreVolumeTags(cartridge.barcode, volumeTags);
    }
  }

  // ------------------------------------------------------------------ observation

  /** What `address` holds, or undefined when empty (or no such element). */
  occupant(address: number): Occupant | undefined {
    return this.contents.get(address);
  }

  /** Element address -> barcode, for every full element. */
  inventory(): Map<number, string> {
    return new Map([...this.contents].sort((a, b) => a[0] - b[0]).map(([a, o]) => [a, o.cartridge.barcode]));
  }

  /** Where the cartridge with `barcode` is. */
  find(barcode: string): number | undefined {
    for (const [a, o] of this.contents) if (o.cartridge.barcode === barcode) return a;
    return undefined;
  }

  drive(address: number): ChangerDrive | undefined {
    return this.drives.get(address);
  }

  doorState(door: DoorName): 'open' | 'closed' {
    return this.doors[door];
  }

  /** The element the transport was last positioned at. */
  transportPosition(): number {
    return this.position;
  }

  /** Whether an element is reachable by the robot now (the ACCESS bit). */
  accessible(e: ElementInfo): boolean {
    if (this.doors.library === 'open') return false;
    if (e.kind === ElementKind.importExport) return this.doors['import-export'] === 'closed';
    return true;
  }

  /** Whether any initiator prevents medium removal. */
  removalPrevented(): boolean {
    return this.preventers.size > 0;
  }

  counters(): { moves: number; exchanges: number; failures: number } {
    return { ...this.stats };
  }

  /** TEST UNIT READY's answer: undefined when ready. */
  notReady(): SenseData | undefined {
    if (this.calibrating > 0) return sense(Sense.BECOMING_READY);
    if (this.doors.library === 'open') return sense(Sense.MANUAL_INTERVENTION_REQUIRED);
    return undefined;
  }

  /** Unit attentions the model wants raised for every initiator. */
  onAttention(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private attention(code: SenseCode): void {
    for (const l of this.listeners) l(code);
  }

  // ------------------------------------------------------------------ hooks and faults

  addMoveHook(hook: MoveHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** The next `n` robot motions fail with HARDWARE ERROR / MECHANICAL POSITIONING ERROR. */
  jamNextMoves(n: number): void {
    this.jamsPending = Math.max(0, Math.floor(n));
  }

  jamsRemaining(): number {
    return this.jamsPending;
  }

  /**
   * After a power cycle: prevention is cleared, the robot recalibrates (NOT READY,
   * BECOMING READY meanwhile) and the next READ ELEMENT STATUS with CURDATA=0 re-scans.
   * Resolves when the changer is ready again.
   */
  powerOn(): Promise<void> {
    this.powering = this.calibrate();
    return this.powering;
  }

  /** Resolves once a power-on in progress has finished. */
  settled(): Promise<void> {
    return this.powering;
  }

  private async calibrate(): Promise<void> {
    this.preventers.clear();
    this.translations.clear();
    this.jamsPending = 0;
    this.stale = true;
    this.position = this.elements.defaultTransport;
    this.calibrating++;
    try {
      await mechanicalDelay(this.personality.timing.powerOnSeconds, this.timeScale, new AbortController().signal);
    } finally {
      this.calibrating--;
    }
  }

  /** LOGICAL UNIT RESET and TARGET RESET clear prevention as SPC-4 requires. */
  reset(): void {
    this.preventers.clear();
    this.translations.clear();
  }

  // ------------------------------------------------------------------ prevention

  setPrevent(initiator: string, prevent: boolean): void {
    if (prevent) this.preventers.add(initiator);
    else this.preventers.delete(initiator);
  }

  // ------------------------------------------------------------------ robot

  /** Runs `fn` when the robot is free; motions never overlap. */
  private withRobot<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.robotChain.then(fn, fn);
    this.robotChain = run.catch(() => undefined);
    return run;
  }

  private ready(): void {
    const why = this.notReady();
    if (why) throw new CheckCondition(why);
  }

  /** Resolves an address a cartridge can be taken from or put into; fails with INVALID ELEMENT ADDRESS. */
  private slotElement(address: number, byte: number | undefined, allowTransport: boolean): ElementInfo {
    const e = this.elements.get(address);
    if (!e || (e.kind === ElementKind.transport && !allowTransport)) fail(Sense.INVALID_ELEMENT_ADDRESS, byte);
    return e;
  }

  /** Validates the transport field of a CDB (0 = default transport). */
  checkTransport(address: number, byte: number | undefined): void {
    if (address === 0) return;
    if (this.elements.get(address)?.kind !== ElementKind.transport) fail(Sense.INVALID_ELEMENT_ADDRESS, byte);
  }

  private inaccessible(e: ElementInfo): boolean {
    return e.kind === ElementKind.importExport && this.doors['import-export'] === 'open';
  }

  private async runHooks(event: MoveEvent, signal: AbortSignal): Promise<void> {
    for (const hook of [...this.hooks]) {
      try {
        await hook(event, signal);
      } catch (e) {
        if (e instanceof CommandAborted || signal.aborted) throw e instanceof CommandAborted ? e : new CommandAborted('command aborted', { cause: e });
        if (e instanceof MoveVetoed) throw new CheckCondition(e.sense);
        if (e instanceof CheckCondition) throw e;
        throw new CheckCondition(sense(Sense.MECHANICAL_POSITIONING_ERROR));
      }
    }
  }

  private jam(): void {
    if (this.jamsPending > 0) {
      this.jamsPending--;
      this.stats.failures++;
      fail(Sense.MECHANICAL_POSITIONING_ERROR);
    }
  }

  /** Makes a loaded drive give its cartridge up; maps the drive's refusal to sense. */
  private async unloadDrive(address: number): Promise<void> {
    const d = this.drives.get(address);
    if (!d || d.bay.readyForRemoval()) return;
    try {
      await d.bay.unloadForRobot();
    } catch (e) {
      if (e instanceof InsertRefused && e.reason === 'removal-prevented') fail(Sense.MEDIUM_REMOVAL_PREVENTED);
      throw new CheckCondition(sense(Sense.MEDIA_LOAD_OR_EJECT_FAILED));
    }
    if (!d.bay.readyForRemoval()) fail(Sense.MEDIUM_REMOVAL_PREVENTED);
  }

  private take(address: number): Occupant {
    const o = this.contents.get(address);
    if (!o) throw new Error(`internal: ${hex(address)} is empty`);
    const d = this.drives.get(address);
    if (d) {
      try {
        d.bay.remove();
      } catch {
        fail(Sense.MEDIA_LOAD_OR_EJECT_FAILED);
      }
    }
    this.contents.delete(address);
    return o;
  }

  /** Puts a cartridge into an empty element; a drive may refuse it (the sense is returned, nothing is placed). */
  private async put(o: Occupant, from: number, address: number, byte: number | undefined): Promise<SenseData | undefined> {
    const fromKind = this.elements.get(from)?.kind;
    const source = fromKind === ElementKind.storage || fromKind === ElementKind.importExport ? from : o.source;
    const next: Occupant = { cartridge: o.cartridge, ...(source !== undefined ? { source } : {}) };
    const d = this.drives.get(address);
    if (d) {
      try {
        await d.bay.insert(o.cartridge);
      } catch (err) {
        if (err instanceof InsertRefused) {
          if (err.reason === 'full') return sense(Sense.MEDIUM_DESTINATION_ELEMENT_FULL, byte === undefined ? {} : { fieldPointer: { inCdb: true, byte, bit: 7 } });
          if (err.reason === 'incompatible') return INCOMPATIBLE_FOR_DRIVE;
        }
        return sense(Sense.MEDIA_LOAD_OR_EJECT_FAILED);
      }
    }
    this.contents.set(address, next);
    return undefined;
  }

  /** Returns a cartridge to where it came from after a failed placement; the hand keeps it when that fails too. */
  private async putBack(o: Occupant, origin: number): Promise<void> {
    if (!this.contents.has(origin)) {
      const d = this.drives.get(origin);
      if (!d) {
        this.contents.set(origin, o);
        return;
      }
      try {
        await d.bay.insert(o.cartridge);
        this.contents.set(origin, o);
        return;
      } catch {
        // falls through: the cartridge stays in the gripper
      }
    }
    this.contents.set(this.elements.defaultTransport, o);
  }

  private moveSeconds(...addresses: number[]): number {
    const t = this.personality.timing;
    const touchesDrive = addresses.some((a) => this.drives.has(a));
    return t.moveSeconds + (touchesDrive ? t.driveMoveExtraSeconds : 0);
  }

  /**
   * MOVE MEDIUM. Fails with CHECK CONDITION: INVALID ELEMENT ADDRESS (unknown address, or
   * the transport as destination), MEDIUM SOURCE ELEMENT EMPTY, MEDIUM DESTINATION ELEMENT
   * FULL, NOT READY / MEDIUM MAGAZINE NOT ACCESSIBLE (import/export element while its door
   * is open), MEDIUM REMOVAL PREVENTED (source drive held by its host), HARDWARE ERROR
   * (jam, hook veto, drive load failure). On abort (`signal`) before the cartridge leaves
   * its element nothing moves and the promise rejects with `CommandAborted`; once a drive
   * has started loading, the motion completes.
   */
  async move(source: number, destination: number, signal: AbortSignal, bytes: FieldBytes = {}): Promise<void> {
    this.ready();
    this.slotElement(source, bytes.source, true);
    this.slotElement(destination, bytes.destination, false);
    await this.withRobot(async () => {
      this.ready();
      const src = this.slotElement(source, bytes.source, true);
      const dst = this.slotElement(destination, bytes.destination, false);
      const o = this.contents.get(source);
      if (!o) fail(Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, bytes.source);
      if (this.contents.has(destination)) fail(Sense.MEDIUM_DESTINATION_ELEMENT_FULL, bytes.destination);
      if (this.inaccessible(src) || this.inaccessible(dst)) fail(Sense.MEDIUM_MAGAZINE_NOT_ACCESSIBLE);
      this.jam();
      await this.unloadDrive(source);
      await this.runHooks(
        { library: this.name, source, destination, sourceKind: src.kind, destinationKind: dst.kind, barcode: o.cartridge.barcode, mediaType: o.cartridge.mediaType, operation: 'move' },
        signal,
      );
      await mechanicalDelay(this.moveSeconds(source, destination), this.timeScale, signal);
      const held = this.take(source);
      const refused = await this.put(held, source, destination, bytes.destination);
      this.position = destination;
      if (refused) {
        await this.putBack(held, source);
        this.stats.failures++;
        throw new CheckCondition(refused);
      }
      this.stats.moves++;
    });
  }

  /**
   * EXCHANGE MEDIUM: the cartridge in `source` goes to `first`, the one in `first` to
   * `second` (which may be `source`, a swap). Errors as {@link move}; the first
   * destination must be full and the second empty unless it is the source. A drive that
   * refuses a cartridge after both were picked leaves them back where they came from when
   * possible, otherwise in the medium transport (reported with EXCEPT).
   */
  async exchange(source: number, first: number, second: number, signal: AbortSignal, bytes: FieldBytes = {}): Promise<void> {
    this.ready();
    await this.withRobot(async () => {
      this.ready();
      const src = this.slotElement(source, bytes.source, true);
      const d1 = this.slotElement(first, bytes.destination, false);
      const d2 = this.slotElement(second, bytes.second, false);
      if (first === source) fail(Sense.INVALID_ELEMENT_ADDRESS, bytes.destination);
      if (second === first) fail(Sense.INVALID_ELEMENT_ADDRESS, bytes.second);
      const a = this.contents.get(source);
      if (!a) fail(Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, bytes.source);
      const b = this.contents.get(first);
      if (!b) fail(Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, bytes.destination);
      if (second !== source && this.contents.has(second)) fail(Sense.MEDIUM_DESTINATION_ELEMENT_FULL, bytes.second);
      if ([src, d1, d2].some((e) => this.inaccessible(e))) fail(Sense.MEDIUM_MAGAZINE_NOT_ACCESSIBLE);
      this.jam();
      await this.unloadDrive(source);
      await this.unloadDrive(first);
      const base = { library: this.name };
      await this.runHooks({ ...base, source, destination: first, sourceKind: src.kind, destinationKind: d1.kind, barcode: a.cartridge.barcode, mediaType: a.cartridge.mediaType, operation: 'exchange-1' }, signal);
      await this.runHooks({ ...base, source: first, destination: second, sourceKind: d1.kind, destinationKind: d2.kind, barcode: b.cartridge.barcode, mediaType: b.cartridge.mediaType, operation: 'exchange-2' }, signal);
      await mechanicalDelay(this.moveSeconds(source, first) + this.moveSeconds(first, second), this.timeScale, signal);
      const heldA = this.take(source);
      const heldB = this.take(first);
      const refusedA = await this.put(heldA, source, first, bytes.destination);
      if (refusedA) {
        await this.putBack(heldA, source);
        await this.putBack(heldB, first);
        this.stats.failures++;
        throw new CheckCondition(refusedA);
      }
      const refusedB = await this.put(heldB, first, second, bytes.second);
      this.position = second;
      if (refusedB) {
        await this.putBack(heldB, first);
        this.stats.failures++;
        throw new CheckCondition(refusedB);
      }
      this.stats.exchanges++;
    });
  }

  /** POSITION TO ELEMENT: moves the empty transport in front of an element. */
  async positionTo(destination: number, signal: AbortSignal, bytes: FieldBytes = {}): Promise<void> {
    this.ready();
    this.slotElement(destination, bytes.destination, false);
    await this.withRobot(async () => {
      this.ready();
      this.jam();
      await mechanicalDelay(this.personality.timing.positionSeconds, this.timeScale, signal);
      this.position = destination;
    });
  }

  /**
   * INITIALIZE ELEMENT STATUS (WITH RANGE): re-reads the labels of `count` elements from
   * `start` (all when `start` is undefined). The emulated inventory is always right, so
   * this costs time and clears the stale flag; it changes nothing.
   */
  async initializeStatus(signal: AbortSignal, range?: { start: number; count: number; startByte?: number }): Promise<void> {
    this.ready();
    let n = this.elements.all().length;
    if (range) {
      if (!this.elements.get(range.start)) fail(Sense.INVALID_ELEMENT_ADDRESS, range.startByte);
      n = Math.min(range.count, this.elements.all().filter((e) => e.address >= range.start).length);
    }
    await this.withRobot(async () => {
      await mechanicalDelay(this.personality.timing.scanSecondsPerElement * n, this.timeScale, signal);
      if (!range) this.stale = false;
    });
  }

  /** For READ ELEMENT STATUS with CURDATA=0: scans first when the inventory is stale. */
  async ensureCurrent(signal: AbortSignal): Promise<void> {
    if (!this.stale) return;
    await this.initializeStatus(signal);
  }

  // ------------------------------------------------------------------ volume tags

  private static checkTag(where: string, t: VolumeTagValue): void {
    if (!/^[!-~]{1,32}$/.test(t.identifier) || /[*?]/.test(t.identifier)) throw new RangeError(`${where}: volume tag "${t.identifier}" is not 1..32 printable characters without blanks, * or ?`);
    if (!Number.isInteger(t.sequence) || t.sequence < 0 || t.sequence > 0xffff) throw new RangeError(`${where}: volume sequence number ${t.sequence} is outside 0..65535`);
  }

  /**
   * Gives the cartridge labelled `barcode` the tags it had (from the lab state or the
   * library YAML), replacing what it has. Throws RangeError for a malformed tag.
   */
  restoreVolumeTags(barcode: string, tags: AssignedVolumeTags): void {
    if (tags.primary) ChangerModel.checkTag(barcode, tags.primary);
    if (tags.alternate) ChangerModel.checkTag(barcode, tags.alternate);
    if (!tags.primary && !tags.alternate) this.assigned.delete(barcode);
    else this.assigned.set(barcode, { ...(tags.primary ? { primary: { ...tags.primary } } : {}), ...(tags.alternate ? { alternate: { ...tags.alternate } } : {}) });
  }

  /** Tags sent to the library (or configured) for cartridges now in it, by label barcode: what a lab saves. */
  volumeTagAssignments(): Map<string, AssignedVolumeTags> {
    const out = new Map<string, AssignedVolumeTags>();
    for (const o of [...this.contents.values()].sort((a, b) => (a.cartridge.barcode < b.cartridge.barcode ? -1 : 1))) {
      const t = this.assigned.get(o.cartridge.barcode);
      if (t) out.set(o.cartridge.barcode, t);
    }
    return out;
  }

  /** The volume tags of the cartridge in `address`; undefined when the element is empty. */
  volumeTags(address: number): ReportedVolumeTags | undefined {
    const o = this.contents.get(address);
    if (!o) return undefined;
    const t = this.assigned.get(o.cartridge.barcode);
    return { primary: t?.primary ?? { identifier: o.cartridge.barcode, sequence: 0 }, ...(t?.alternate ? { alternate: t.alternate } : {}) };
  }

  /**
   * Whether element descriptors carry alternate volume tag information (AVOLTAG): while any
   * cartridge in the library has an alternate tag. A library nobody has sent one to
   * reports exactly what a barcode-reader-only library does.
   */
  alternateTagsInUse(): boolean {
    for (const o of this.contents.values()) if (this.assigned.get(o.cartridge.barcode)?.alternate) return true;
    return false;
  }

  /**
   * SEND VOLUME TAG with an assert, replace or undefine action on the cartridge in
   * `address`. Fails with INVALID ELEMENT ADDRESS (unknown address or the medium
   * transport), MEDIUM SOURCE ELEMENT EMPTY (nothing to tag), INVALID FIELD IN CDB at the
   * send action code (assert of a tag already defined, undefine of one that is not).
   * `tag` is ignored for undefine.
   */
  setVolumeTag(action: number, address: number, tag: VolumeTagValue | undefined, bytes: { address: number; action: number }): void {
    this.ready();
    const a = describeAction(action);
    if (!a || a.op === 'translate') throw new Error(`internal: send action ${action} does not set a tag`);
    const e = this.elements.get(address);
    if (!e || e.kind === ElementKind.transport) fail(Sense.INVALID_ELEMENT_ADDRESS, bytes.address);
    const o = this.contents.get(address);
    if (!o) fail(Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, bytes.address);
    const barcode = o.cartridge.barcode;
    const now = this.assigned.get(barcode) ?? {};
    // The label is a primary tag the reader always sees, so the primary is always defined.
    const defined = a.tag === 'primary' ? true : now.alternate !== undefined;
    const which: TagKind = a.tag;
    if (a.op === 'assert' && defined) invalidCdbField(bytes.action, 4);
    if (a.op === 'undefine') {
      if (which === 'primary' ? now.primary === undefined : !defined) invalidCdbField(bytes.action, 4);
      const { [which]: _gone, ...rest } = now;
      this.restoreVolumeTags(barcode, rest);
      return;
    }
    if (!tag) throw new Error('internal: assert/replace without a tag');
    this.restoreVolumeTags(barcode, { ...now, [which]: tag });
  }

  /**
   * SEND VOLUME TAG with a translate action: remembers the search for `initiator` (the
   * elements are found when REQUEST VOLUME ELEMENT ADDRESS asks, so they are where the
   * cartridges are then). Fails with INVALID ELEMENT ADDRESS for a start past every element.
   */
  translate(initiator: string, t: Translation, bytes: { address: number }): void {
    this.ready();
    // The search starts at any address, as READ ELEMENT STATUS does; past every element is an error.
    if (!this.elements.all().some((e) => e.address >= t.start)) fail(Sense.INVALID_ELEMENT_ADDRESS, bytes.address);
    this.translations.set(initiator, t);
  }

  /**
   * The elements whose cartridge matches the last translate of `initiator`, in ascending
   * address order from the translate's starting address; undefined when it sent none
   * since the last reset.
   */
  translated(initiator: string): { readonly action: number; readonly elements: ElementInfo[] } | undefined {
    const t = this.translations.get(initiator);
    if (!t) return undefined;
    const a = describeAction(t.action);
    if (a?.op !== 'translate') return undefined;
    const elements = this.elements.all().filter((e) => {
      if (e.address < t.start) return false;
      const tags = this.volumeTags(e.address);
      if (!tags) return false;
      const p = a.search !== 'alternate' && tagMatches(tags.primary, t.template, a.ignoreSequence);
      const q = a.search !== 'primary' && tagMatches(tags.alternate, t.template, a.ignoreSequence);
      return p || q;
    });
    return { action: t.action, elements };
  }

  // ------------------------------------------------------------------ operator side

  /**
   * Opens a door. The import/export door refuses while any initiator prevents medium
   * removal ({@link OperatorActionError} `door-locked`); it waits for a robot motion in
   * progress to finish. Opening the library door makes the changer NOT READY.
   */
  async openDoor(door: DoorName = 'import-export'): Promise<void> {
    await this.withRobot(async () => {
      if (door === 'import-export' && this.removalPrevented()) {
        throw new OperatorActionError('door-locked', `${this.name}: the import/export door is locked (medium removal prevented by ${[...this.preventers].join(', ')})`);
      }
      this.doors[door] = 'open';
    });
  }

  /**
   * Closes a door. Closing the import/export door raises IMPORT OR EXPORT ELEMENT
   * ACCESSED for every initiator; closing the library door re-scans the inventory (NOT
   * READY meanwhile) and raises NOT READY TO READY CHANGE. Resolves when the changer is
   * ready again.
   */
  async closeDoor(door: DoorName = 'import-export'): Promise<void> {
    if (this.doors[door] === 'closed') return;
    this.doors[door] = 'closed';
    if (door === 'import-export') {
      this.attention(Sense.IMPORT_EXPORT_ELEMENT_ACCESSED);
      return;
    }
    this.calibrating++;
    try {
      const n = this.elements.all().length;
      await mechanicalDelay(this.personality.timing.scanSecondsPerElement * n, this.timeScale, new AbortController().signal);
      this.stale = false;
    } finally {
      this.calibrating--;
    }
    this.attention(Sense.NOT_READY_TO_READY_CHANGE);
  }

  private operatorElement(address: number, door: DoorName): ElementInfo {
    const e = this.elements.get(address);
    const kind = door === 'import-export' ? ElementKind.importExport : ElementKind.storage;
    if (!e || e.kind !== kind) throw new OperatorActionError('no-such-element', `${this.name}: ${hex(address)} is not ${door === 'import-export' ? 'an import/export' : 'a storage'} element`);
    if (this.doors[door] !== 'open') throw new OperatorActionError('door-closed', `${this.name}: open the ${door} door first`);
    return e;
  }

  /** The operator puts a cartridge into an element behind an open door. */
  operatorPlace(address: number, cartridge: CartridgeRef): void {
    const e = this.operatorElement(address, this.elements.get(address)?.kind === ElementKind.storage ? 'library' : 'import-export');
    if (this.contents.has(address)) throw new OperatorActionError('element-full', `${this.name}: ${hex(address)} is full`);
    const where = this.find(cartridge.barcode);
    if (where !== undefined) throw new OperatorActionError('duplicate-barcode', `${this.name}: ${cartridge.barcode} is already in ${hex(where)}`);
    this.contents.set(address, { cartridge, ...(e.kind === ElementKind.importExport ? { imported: true } : {}) });
  }

  /** The operator takes a cartridge out of an element behind an open door. */
  operatorRemove(address: number): CartridgeRef {
    this.operatorElement(address, this.elements.get(address)?.kind === ElementKind.storage ? 'library' : 'import-export');
    const o = this.contents.get(address);
    if (!o) throw new OperatorActionError('element-empty', `${this.name}: ${hex(address)} is empty`);
    this.contents.delete(address);
    // Tags sent to the library are the library's record, not the cartridge's: they leave with it.
    this.assigned.delete(o.cartridge.barcode);
    return o.cartridge;
  }

  /** First empty import/export element, for the operator. */
  firstEmptyImportExport(): number | undefined {
    return this.elements.ofKind(ElementKind.importExport).find((e) => !this.contents.has(e.address))?.address;
  }
}
