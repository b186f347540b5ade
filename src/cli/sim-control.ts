/**
 * The control endpoint of `ptpvts sim serve`: what a person at the library does while it
 * serves (insert and eject cartridges through the import/export station, add cartridges
 * through the library door, inject and clear faults, reload the YAML for cartridges added to
 * it), asked over a Unix socket beside the lab's `state.json` (`sim.sock`, mode 0600: only
 * the user who serves may control it). One JSON request per line, one JSON answer per line.
 *
 * Every change is applied to the running library, so initiators see the unit attentions a
 * real library raises, and saved to `state.json` at once (the server holds the lab's lock).
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { describeSense } from '../scsi/sense.js';
import { loadLibraryConfig, type EmulatedLibrary, type LibraryConfig } from '../../firmware-sim/library/index.js';
import { OperatorActionError } from '../../firmware-sim/smc/index.js';
import { CheckCondition } from '../../firmware-sim/engine/check.js';
import type { StreamingStats, TapeDriveUnit } from '../../firmware-sim/ssc/index.js';
import { EncryptionRequestError, encryptionRequestSchemas, runEncryptionRequest } from './encryption-key.js';
import { configWithState, type LabState } from './lab.js';

/** Name of the control socket in the lab's directory. */
export const CONTROL_SOCKET = 'sim.sock';

/** Path of the control socket of the lab whose library YAML is `configPath`. */
export function controlSocketPath(configPath: string): string {
  return join(dirname(resolve(configPath)), CONTROL_SOCKET);
}

export const FAULT_KINDS = ['medium-error', 'drive-hang', 'drive-offline', 'tapealert', 'robot-jam', 'power-cycle'] as const;

const barcode = z.string().min(1).max(32);
const cartridgeOptions = {
  capacityBytes: z.number().int().positive().optional(),
  mediaType: z.string().min(1).optional(),
  writeProtected: z.boolean().optional(),
};

/** A control request, as it travels on the socket. */
export const controlRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('status') }),
  z.strictObject({ op: z.literal('insert'), barcode, ...cartridgeOptions }),
  z.strictObject({ op: z.literal('eject'), barcode }),
  z.strictObject({ op: z.literal('add-cartridge'), barcode, slot: z.number().int().min(1).optional(), ...cartridgeOptions }),
  z.strictObject({
    op: z.literal('fault-inject'),
    kind: z.enum(FAULT_KINDS),
    drive: z.number().int().min(1).default(1),
    block: z.number().int().min(0).optional(),
    flag: z.number().int().min(1).max(64).optional(),
    moves: z.number().int().min(1).default(1),
  }),
  z.strictObject({ op: z.literal('fault-clear') }),
  z.strictObject({ op: z.literal('reload') }),
  ...encryptionRequestSchemas,
]);
export type ControlRequest = z.input<typeof controlRequestSchema>;

/** A drive as `status` reports it. */
export interface DriveStatus {
  readonly number: number;
  readonly lun: number;
  readonly address: number;
  readonly serial: string;
  readonly personality: string;
  /** `empty`, `loaded`, ... of the drive model, or `offline` / `hung` while such a fault is injected. */
  readonly state: string;
  readonly barcode?: string;
  /** Logical object number of the tape, when loaded. */
  readonly block?: number;
  /**
   * The streaming model (speed step, backhitches, buffer fill, device seconds streaming and
   * stopped), once the drive has run with a time scale above 0.
   */
  readonly streaming?: StreamingStats;
}

/** The answer to `status`. */
export interface LibraryStatus {
  readonly library: string;
  readonly yaml: string;
  readonly iqn: string;
  readonly portal: string;
  readonly sessions: number;
  readonly drives: readonly DriveStatus[];
  readonly elements: readonly { address: number; kind: string; barcode: string; mediaType: string }[];
  readonly emptyImportExport: readonly number[];
  readonly faults: LabState['faults'];
}

function streamingOf(s: StreamingStats | undefined): { streaming?: StreamingStats } {
  return s ? { streaming: s } : {};
}

/** A control request that could not be done; `code` says what kind of problem (`door-locked`, `not-found`, `bad-request`, ...). */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The running library a control endpoint works on. */
export interface ControlledLibrary {
  readonly configPath: string;
  /** The library YAML as read (without the state's changes): which cartridges are its own. */
  readonly yaml: LibraryConfig;
  readonly library: EmulatedLibrary;
  readonly drives: readonly TapeDriveUnit[];
  readonly state: LabState;
  /** Saves the state durably (the server holds the lab's lock). */
  save(): void;
  /** IQN and `host:port` of its target, and sessions logged in now. */
  target(): { iqn: string; portal: string; sessions: number };
}

const hex = (a: number): string => `0x${a.toString(16).padStart(4, '0')}`;

/** Runs control requests on one library, one at a time (doors and the robot are shared). */
export class LibraryControl {
  private queue: Promise<unknown> = Promise.resolve();
  /** The YAML as last read (at start, or by reload): which cartridges are the YAML's own. */
  private yaml: LibraryConfig;

  constructor(
    private readonly lib: ControlledLibrary,
    private readonly log: Logger,
  ) {
    this.yaml = lib.yaml;
  }

  /** Runs one request; rejects with {@link ControlError} naming what was wrong. */
  run(raw: unknown): Promise<unknown> {
    const parsed = controlRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return Promise.reject(new ControlError('bad-request', `bad control request: ${i.path.join('.') || '(request)'}: ${i.message}`, { cause: parsed.error }));
    }
    const req = parsed.data;
    const next = this.queue.then(() => this.dispatch(req));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async dispatch(req: z.output<typeof controlRequestSchema>): Promise<unknown> {
    if (req.op === 'status') return this.status();
    if (req.op === 'encryption-show') return this.encryption(req);
    // A key is never logged.
    this.log.info({ request: req.op === 'encryption-set' ? { ...req, key: '(not logged)' } : req }, `control: ${req.op}`);
    try {
      switch (req.op) {
        case 'insert':
          return await this.insert(req.barcode, req);
        case 'eject':
          return await this.eject(req.barcode);
        case 'add-cartridge':
          return await this.addCartridge(req.barcode, req.slot, req);
        case 'fault-inject':
          return await this.injectFault(req);
        case 'fault-clear':
          return this.clearFaults();
        case 'reload':
          return await this.reload();
        case 'encryption-set':
        case 'encryption-clear':
          return this.encryption(req);
      }
    } catch (e) {
      throw asControlError(e);
    } finally {
      this.lib.save();
    }
  }

  status(): LibraryStatus {
    const { library, drives, state, configPath } = this.lib;
    const t = this.lib.target();
    const offline = new Set(state.faults.offlineDrives ?? []);
    const hung = new Set(state.faults.hungDrives ?? []);
    const inventory = library.inventory();
    const full = new Set(inventory.map((e) => e.address));
    return {
      library: library.name,
      yaml: configPath,
      iqn: t.iqn,
      portal: t.portal,
      sessions: t.sessions,
      drives: library.drives.map((d, i) => {
        const m = drives[i]?.drive;
        const n = i + 1;
        const state = offline.has(n) ? 'offline' : hung.has(n) ? 'hung' : (m?.state ?? 'empty');
        return {
          number: n,
          lun: d.lun,
          address: d.address,
          serial: d.serial,
          personality: d.personality,
          state,
          ...(m?.cartridge ? { barcode: m.cartridge.barcode } : {}),
          ...(m?.state === 'loaded' ? { block: m.position } : {}),
          ...streamingOf(m?.streamingStats()),
        };
      }),
      elements: inventory.map((e) => ({ address: e.address, kind: e.kind, barcode: e.barcode, mediaType: e.mediaType })),
      emptyImportExport: library.config.importExport.filter((a) => !full.has(a)),
      faults: state.faults,
    };
  }

  /** Sets, clears or shows a drive's key; nothing of it goes to the state. */
  private encryption(req: Parameters<typeof runEncryptionRequest>[1]): unknown {
    try {
      return runEncryptionRequest(this.lib.drives, req);
    } catch (e) {
      if (e instanceof EncryptionRequestError) throw new ControlError(e.code, e.message, { cause: e });
      throw e;
    }
  }

  private where(barcode: string): { address: number; kind: string } | undefined {
    return this.lib.library.inventory().find((e) => e.barcode === barcode);
  }

  /** A cartridge's file and media as known from the YAML or an earlier insert, so a cartridge that comes back is the same one. */
  private known(barcode: string, yaml: LibraryConfig = this.yaml): { mediaType: string; capacityBytes: number; writeProtected: boolean; path: string } | undefined {
    const added = this.lib.state.added?.[barcode];
    if (added) return added;
    const c = yaml.cartridges.find((x) => x.barcode === barcode);
    return c ? { mediaType: c.mediaType, capacityBytes: c.capacityBytes, writeProtected: c.writeProtected, path: c.path } : undefined;
  }

  private recordIn(barcode: string, address: number): void {
    const st = this.lib.state;
    st.removed = (st.removed ?? []).filter((b) => b !== barcode);
    if (st.removed.length === 0) delete st.removed;
    if (!this.yaml.cartridges.some((c) => c.barcode === barcode)) {
      const o = this.lib.library.model.occupant(address)?.cartridge;
      if (o) st.added = { ...st.added, [barcode]: { mediaType: o.mediaType, capacityBytes: o.capacityBytes, writeProtected: o.writeProtected, path: o.path } };
    }
  }

  private cartridgeOptions(barcode: string, o: { capacityBytes?: number | undefined; mediaType?: string | undefined; writeProtected?: boolean | undefined }) {
    const k = this.known(barcode);
    const capacityBytes = o.capacityBytes ?? k?.capacityBytes;
    const mediaType = o.mediaType ?? k?.mediaType;
    const writeProtected = o.writeProtected ?? k?.writeProtected;
    return {
      ...(capacityBytes === undefined ? {} : { capacityBytes }),
      ...(mediaType === undefined ? {} : { mediaType }),
      ...(writeProtected === undefined ? {} : { writeProtected }),
      ...(k ? { path: k.path } : {}),
    };
  }

  /** The operator opens the import/export door, puts the cartridge in, closes it: IMPORT OR EXPORT ELEMENT ACCESSED for every initiator. */
  private async insert(barcode: string, o: { capacityBytes?: number | undefined; mediaType?: string | undefined; writeProtected?: boolean | undefined }): Promise<{ barcode: string; address: number }> {
    const { library } = this.lib;
    if (library.config.importExport.length === 0) throw new ControlError('no-import-export', `library ${library.name} has no import/export slot; use add-cartridge to put ${barcode} into a storage slot`);
    const at = this.where(barcode);
    if (at) throw new ControlError('duplicate-barcode', `${barcode} is already in the library, at ${hex(at.address)} (${at.kind})`);
    await library.openDoor('import-export');
    let address: number;
    try {
      address = library.insertIntoImportExport(barcode, this.cartridgeOptions(barcode, o));
    } finally {
      await library.closeDoor('import-export');
    }
    this.recordIn(barcode, address);
    return { barcode, address };
  }

  /** The robot takes the cartridge to the import/export station; the operator opens the door and takes it out. */
  private async eject(barcode: string): Promise<{ barcode: string; from: number; via: number }> {
    const { library } = this.lib;
    const at = this.where(barcode);
    if (!at) throw new ControlError('not-found', `${barcode} is not in library ${library.name}`);
    if (at.kind === 'drive') throw new ControlError('in-drive', `${barcode} is in the drive at ${hex(at.address)}; unload it first (ptpvts unload, or the initiator's MOVE MEDIUM)`);
    let via = at.address;
    if (at.kind !== 'import-export') {
      const ie = library.model.firstEmptyImportExport();
      if (ie === undefined) {
        throw new ControlError(library.config.importExport.length === 0 ? 'no-import-export' : 'import-export-full', `library ${library.name} has no empty import/export slot to eject ${barcode} through`);
      }
      await library.model.move(at.address, ie, new AbortController().signal);
      via = ie;
    }
    await library.openDoor('import-export');
    try {
      library.removeFromImportExport(via);
    } finally {
      await library.closeDoor('import-export');
    }
    const st = this.lib.state;
    if (this.yaml.cartridges.some((c) => c.barcode === barcode)) st.removed = [...new Set([...(st.removed ?? []), barcode])];
    return { barcode, from: at.address, via };
  }

  /** With the library door open, the operator puts a cartridge into a storage slot; closing the door re-scans (NOT READY TO READY CHANGE). */
  private async addCartridge(barcode: string, slot: number | undefined, o: { capacityBytes?: number | undefined; mediaType?: string | undefined; writeProtected?: boolean | undefined }): Promise<{ barcode: string; address: number }> {
    const { library } = this.lib;
    const at = this.where(barcode);
    if (at) throw new ControlError('duplicate-barcode', `${barcode} is already in the library, at ${hex(at.address)} (${at.kind})`);
    const storage = library.config.storage;
    const full = new Set(library.inventory().map((e) => e.address));
    let address: number | undefined;
    if (slot !== undefined) {
      address = storage[slot - 1];
      if (address === undefined) throw new ControlError('no-such-element', `library ${library.name} has no slot ${slot} (it has ${storage.length})`);
      if (full.has(address)) throw new ControlError('element-full', `slot ${slot} (${hex(address)}) is full`);
    } else {
      address = storage.find((a) => !full.has(a));
      if (address === undefined) throw new ControlError('element-full', `every storage slot of library ${library.name} is full`);
    }
    await library.openDoor('library');
    try {
      library.insertIntoStorage(address, barcode, this.cartridgeOptions(barcode, o));
    } finally {
      await library.closeDoor('library');
    }
    this.recordIn(barcode, address);
    return { barcode, address };
  }

  private async injectFault(r: { kind: (typeof FAULT_KINDS)[number]; drive: number; block?: number | undefined; flag?: number | undefined; moves: number }): Promise<{ injected: string }> {
    const { library, drives, state } = this.lib;
    const f = state.faults;
    const unit = drives[r.drive - 1];
    if (r.kind !== 'robot-jam' && r.kind !== 'power-cycle' && !unit) throw new ControlError('no-such-drive', `library ${library.name} has no drive ${r.drive} (it has ${drives.length})`);
    const n = String(r.drive);
    switch (r.kind) {
      case 'medium-error':
        if (r.block === undefined) throw new ControlError('bad-request', 'medium-error needs a block number');
        unit!.faults.mediumErrorAt(r.block);
        f.mediumErrors = { ...f.mediumErrors, [n]: [...(f.mediumErrors?.[n] ?? []), r.block] };
        return { injected: `medium error at block ${r.block} on drive ${n}` };
      case 'drive-hang':
        unit!.faults.hang();
        f.hungDrives = [...new Set([...(f.hungDrives ?? []), r.drive])];
        return { injected: `drive ${n} hangs` };
      case 'drive-offline':
        unit!.faults.setOffline(true);
        f.offlineDrives = [...new Set([...(f.offlineDrives ?? []), r.drive])];
        return { injected: `drive ${n} off-line` };
      case 'tapealert':
        if (r.flag === undefined) throw new ControlError('bad-request', 'tapealert needs a flag number (1..64)');
        unit!.faults.setTapeAlert(r.flag);
        f.tapeAlerts = { ...f.tapeAlerts, [n]: [...(f.tapeAlerts?.[n] ?? []), r.flag] };
        return { injected: `TapeAlert flag ${r.flag} on drive ${n}` };
      case 'robot-jam': {
        const jams = library.model.jamsRemaining() + r.moves;
        library.faults.jamNextMoves(jams);
        return { injected: `robot jam for the next ${jams} move(s)` };
      }
      case 'power-cycle':
        await library.faults.powerCycle();
        return { injected: 'power cycle: every initiator will see POWER ON OCCURRED' };
    }
  }

  private clearFaults(): { cleared: true } {
    const { library, drives, state } = this.lib;
    for (const d of drives) d.faults.clear();
    library.faults.clear();
    state.faults = {};
    return { cleared: true };
  }

  /**
   * Reads the YAML again and puts in each cartridge it names that the library has not seen
   * (not in it, not ejected), at its YAML place when that is empty: a storage slot through
   * the library door, an import/export slot through its door. Other changes to the YAML
   * (drives, slots, personality) need a restart; they are reported, not applied.
   */
  private async reload(): Promise<{ added: { barcode: string; address: number }[]; skipped: string[] }> {
    const { library, state, configPath } = this.lib;
    let fresh: LibraryConfig;
    try {
      fresh = loadLibraryConfig({ path: configPath });
    } catch (e) {
      throw new ControlError('bad-yaml', `cannot reload ${configPath}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const old = this.yaml;
    const skipped: string[] = [];
    if (fresh.storage.length !== old.storage.length || fresh.importExport.length !== old.importExport.length || fresh.drives.length !== old.drives.length) {
      skipped.push('changes to slots or drives (restart sim serve for those)');
    }
    const removed = new Set(state.removed ?? []);
    const known = new Set([...old.cartridges.map((c) => c.barcode), ...Object.keys(state.added ?? {})]);
    const added: { barcode: string; address: number }[] = [];
    const full = new Set(library.inventory().map((e) => e.address));
    for (const c of configWithState(fresh, { ...state, locations: {} }).cartridges) {
      if (known.has(c.barcode) || removed.has(c.barcode)) continue;
      if (full.has(c.address)) {
        skipped.push(`${c.barcode}: ${hex(c.address)} is full`);
        continue;
      }
      const opts = { mediaType: c.mediaType, capacityBytes: c.capacityBytes, writeProtected: c.writeProtected, path: c.path, address: c.address };
      if (old.storage.includes(c.address)) {
        await library.openDoor('library');
        try {
          library.insertIntoStorage(c.address, c.barcode, opts);
        } finally {
          await library.closeDoor('library');
        }
      } else if (old.importExport.includes(c.address)) {
        await library.openDoor('import-export');
        try {
          library.insertIntoImportExport(c.barcode, opts);
        } finally {
          await library.closeDoor('import-export');
        }
      } else {
        skipped.push(`${c.barcode}: ${hex(c.address)} is not a storage or import/export slot of the running library`);
        continue;
      }
      full.add(c.address);
      // In the YAML now: its place is kept in locations like any YAML cartridge's.
      added.push({ barcode: c.barcode, address: c.address });
    }
    this.yaml = { ...old, cartridges: fresh.cartridges };
    return { added, skipped };
  }
}

function asControlError(e: unknown): ControlError {
  if (e instanceof ControlError) return e;
  if (e instanceof OperatorActionError) return new ControlError(e.code, e.message, { cause: e });
  if (e instanceof CheckCondition) return new ControlError('check-condition', `the library answered ${describeSense(e.sense)}`, { cause: e });
  return new ControlError('internal', e instanceof Error ? e.message : String(e), { cause: e });
}

/** A listening control socket. */
export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on `path` (a Unix socket, mode 0600). A socket file left there by a server that
 * is gone is removed first: the caller holds the lab's lock, so no live server owns it.
 * Rejects with the listen error.
 */
export async function listenControl(path: string, control: LibraryControl, log: Logger): Promise<ControlServer> {
  if (existsSync(path)) unlinkSync(path);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > 65536) {
        socket.end(JSON.stringify({ ok: false, error: { code: 'bad-request', message: 'request longer than 64 KiB' } }) + '\n');
        return;
      }
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch {
          socket.write(JSON.stringify({ ok: false, error: { code: 'bad-request', message: 'a request is one line of JSON' } }) + '\n');
          continue;
        }
        control.run(req).then(
          (result) => socket.write(JSON.stringify({ ok: true, result }) + '\n'),
          (e: unknown) => {
            const err = asControlError(e);
            log.warn({ code: err.code, err: err.message }, 'control request failed');
            socket.write(JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }) + '\n');
          },
        );
      }
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  chmodSync(path, 0o600);
  let closing: Promise<void> | undefined;
  return {
    path,
    close: () =>
      (closing ??= new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      })),
  };
}
