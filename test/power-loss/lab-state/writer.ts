/**
 * The writer of the lab-state campaign: CLI sessions on one embedded lab through the
 * production code (openEmbeddedLab ... close, and updateLabState for fault injection), each
 * saving `state.json`. A state counts as acknowledged only once the production call that
 * saves it has returned.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultLibraryYaml } from '../../../src/cli/default-lab.js';
import { openEmbeddedLab, parseLabState, updateLabState, type LabState } from '../../../src/cli/lab.js';
import { loadCartridge, unloadCartridge } from '../../../src/cli/ops.js';

/** JSON with object keys sorted, so equal states compare equal as text. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function syncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes a lab directory with its library YAML, durably (file, directory and the parents up
 * to `root`): the campaign checks `state.json`, so everything around it must be there after a cut.
 */
export function makeLabDurably(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const yaml = join(dir, 'library.yaml');
  writeFileSync(yaml, defaultLibraryYaml(name).replace(/capacity: 64MiB/g, 'capacity: 8MiB'));
  syncPath(yaml);
  syncPath(dir);
  for (let d = dirname(dir); d.length >= root.length; d = dirname(d)) {
    syncPath(d);
    if (d === root) break;
  }
  return yaml;
}

/** One lab's acknowledged states, in order. */
export class LabLedger {
  /** Canonical text of each acknowledged state; index 0 is the first save. */
  readonly acked: string[] = [];
  readonly kinds = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly yaml: string,
  ) {}

  ack(kind: string, state: LabState): void {
    this.acked.push(canonical(parseLabState('(acknowledged)', state)));
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
  }
}

const BLOCK = Buffer.alloc(700, 0x5a);
/** Lock wait of a session: both labs' writers are in this process, one session at a time per lab. */
const LOCK = { timeoutMs: 10_000, command: 'lab-state power-loss writer' };

/**
 * First session: drive 1 gets LAB001L8, where every later session appends a block, so each
 * save differs from all before it (its position only grows) and an older state cannot pass
 * for a newer one.
 */
export async function firstSession(l: LabLedger): Promise<void> {
  const lab = await openEmbeddedLab(l.yaml, { lock: LOCK });
  try {
    await loadCartridge(lab, 'LAB001L8', 1);
  } catch (e) {
    await lab.close().catch(() => undefined);
    throw e;
  }
  await lab.close();
  l.ack('load', lab.emulated!.state);
}

/**
 * One step: a session that moves a cartridge between slots, or loads/unloads drive 2, and
 * appends a block to drive 1's tape; or a fault injection (a new medium error block on drive 2).
 */
export async function step(l: LabLedger, rand: () => number, faultSerial: { n: number }): Promise<void> {
  const r = rand();
  if (r < 0.25) {
    const block = faultSerial.n++;
    const saved = await updateLabState(l.yaml, (s) => void (s.faults.mediumErrors = { ...s.faults.mediumErrors, '2': [...(s.faults.mediumErrors?.['2'] ?? []), block] }), LOCK);
    l.ack('fault', saved);
    return;
  }
  const lab = await openEmbeddedLab(l.yaml, { lock: LOCK });
  let kind = 'append';
  try {
    if (r < 0.6) {
      const inv = await lab.changer.inventory();
      const full = inv.storage.filter((e) => e.full);
      const empty = inv.storage.filter((e) => !e.full);
      const from = full[Math.floor(rand() * full.length)];
      const to = empty[Math.floor(rand() * empty.length)];
      if (from && to) {
        await lab.changer.move(from.address, to.address);
        kind = 'move';
      }
    } else if (r < 0.8) {
      const inv = await lab.changer.inventory();
      if (inv.dataTransfer[1]?.full) {
        await unloadCartridge(lab, 2);
        kind = 'unload';
      } else {
        const full = inv.storage.filter((e) => e.full);
        const c = full[Math.floor(rand() * full.length)];
        if (c) {
          await loadCartridge(lab, String(c.address), 2);
          kind = 'load';
        }
      }
    }
    const d = lab.drives[0]!;
    await d.spaceToEndOfData();
    await d.writeBlock(BLOCK);
  } catch (e) {
    await lab.close().catch(() => undefined);
    throw e;
  }
  await lab.close();
  l.ack(kind, lab.emulated!.state);
}
