/**
 * `ptpvts volumes list|insert|eject|show`: the operator's side of the volume catalogue the
 * VTCs' virtual libraries serve to hosts (src/vtc/host-library). Volumes are in the scratch
 * or the private category, as the IBM library manager keeps them; a running virtual
 * library picks up a change at its changer's next command. `--json` prints one document
 * per command (docs/host-library.md gives their shapes).
 */
import type { Command } from 'commander';
import { CatalogueError, VolumeCatalogue } from '../vtc/host-library/catalogue.js';
import type { CatalogueEntry, VolumeCategory } from '../vtc/host-library/catalogue.js';
import { VtsVolumes } from '../vtc/host-library/vts-volumes.js';
import type { VtsVolume } from '../vtc/host-library/vts-volumes.js';
import { OPERATOR } from '../vtc/rpc.js';
import { VTS_NAMES } from '../ptp/types.js';
import type { VtsName } from '../ptp/types.js';
import { UsageError } from './ops.js';
import type { Out } from './output.js';
import { loadOperatorKey, loadTopology, tlsFor, TopologyError } from './topology.js';

/** Most volumes one range may name. */
const MAX_RANGE = 4000;

/**
 * Expands `V00001-V00010` (same prefix, numbers of the same width) and single volsers.
 * Throws UsageError naming the argument that is neither.
 */
export function expandVolsers(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    const v = a.trim().toUpperCase();
    const range = /^([A-Z0-9]*?)(\d+)-([A-Z0-9]*?)(\d+)$/.exec(v);
    if (range !== null && range[1] === range[3] && range[2]!.length === range[4]!.length) {
      const [from, to] = [Number(range[2]), Number(range[4])];
      if (to < from) throw new UsageError(`volser range ${a} runs backwards`);
      if (to - from + 1 > MAX_RANGE) throw new UsageError(`volser range ${a} names ${to - from + 1} volumes (at most ${MAX_RANGE})`);
      for (let n = from; n <= to; n++) out.push(`${range[1]}${String(n).padStart(range[2]!.length, '0')}`);
      continue;
    }
    if (!/^[A-Z0-9]{1,6}$/.test(v)) throw new UsageError(`${JSON.stringify(a)} is not a volser (1 to 6 characters A-Z, 0-9) nor a range like V00001-V00010`);
    out.push(v);
  }
  return out;
}

function category(s: string | undefined): VolumeCategory | undefined {
  if (s === undefined) return undefined;
  if (s !== 'scratch' && s !== 'private') throw new UsageError(`--category must be scratch or private (got ${JSON.stringify(s)})`);
  return s;
}

const entryView = (e: CatalogueEntry): Record<string, unknown> => ({ volser: e.volser, category: e.category, slot: e.slot + 1, copyMode: e.copyMode ?? null, insertedAt: new Date(e.insertedAt).toISOString() });

/** Runs `fn`, turning catalogue refusals into usage errors (message alone, exit 1). */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CatalogueError || e instanceof TopologyError) throw new UsageError(e.message);
    throw e;
  }
}

/** Each VTS's record of `volser`, asked as the operator over the topology's VTS addresses. */
async function vtsRecords(topologyPath: string, volser: string): Promise<Record<VtsName, Record<string, unknown>>> {
  const t = loadTopology(topologyPath);
  const tls = tlsFor(t, 'operator');
  const v = new VtsVolumes({
    self: OPERATOR,
    vtcs: t.vtcs.map((x) => x.id),
    secret: t.secret,
    vts: { A: t.vts.A.listen, B: t.vts.B.listen },
    operatorKey: loadOperatorKey(t),
    ...(tls === undefined ? {} : { tls }),
  });
  try {
    const all = await v.all();
    const out = {} as Record<VtsName, Record<string, unknown>>;
    for (const x of VTS_NAMES) {
      const l = all[x];
      if (!Array.isArray(l)) out[x] = { reachable: false, error: l.error };
      else {
        const r: VtsVolume | undefined = l.find((e) => e.volser === volser);
        out[x] = r === undefined ? { reachable: true, present: false } : { reachable: true, present: true, generation: r.token.generation, consistent: r.token.consistent, dataGeneration: r.dataGeneration, bytes: r.bytes, mounted: r.mounted, premigrated: r.premigrated };
      }
    }
    return out;
  } finally {
    v.close();
  }
}

/** Registers `volumes` and its subcommands on `program`. */
export function registerVolumeCommands(program: Command, out: Out): void {
  const vols = program.command('volumes').description('logical volumes of the virtual libraries hosts see (scratch and private categories)');
  const cat = (c: Command): Command => c.requiredOption('-c, --catalogue <file>', 'the volume catalogue of the composite library (JSON)').option('--json', 'print one JSON document');

  cat(vols.command('list'))
    .description('list the volumes of the catalogue, by home slot')
    .option('--category <c>', 'only scratch or only private volumes')
    .action(async (o: { catalogue: string; json?: boolean; category?: string }) => {
      const only = category(o.category);
      const c = new VolumeCatalogue(o.catalogue);
      const [slots, list] = await guarded(async () => [await c.slots(), await c.list()] as const);
      const shown = list.filter((e) => only === undefined || e.category === only);
      if (o.json === true) {
        out.line(JSON.stringify({ format: 'ptpvts.volumes/1', catalogue: o.catalogue, slots, volumes: shown.map(entryView) }, null, 2));
        return;
      }
      const scratch = list.filter((e) => e.category === 'scratch').length;
      out.line(`${list.length} volumes in ${slots} slots: ${scratch} scratch, ${list.length - scratch} private`);
      for (const e of shown) out.line(`  ${e.volser.padEnd(6)}  ${e.category.padEnd(7)}  slot ${String(e.slot + 1).padStart(4)}${e.copyMode === undefined ? '' : `  copy ${e.copyMode}`}`);
    });

  cat(vols.command('insert'))
    .description('insert volumes (a range like V00001-V00010 works), scratch unless --category private; creates the catalogue if needed')
    .argument('<volsers...>', 'volsers or ranges')
    .option('--category <c>', 'scratch (default) or private')
    .option('--copy-mode <mode>', "the volumes' copy mode: immediate or deferred (default: the VTC's)")
    .option('--slots <n>', 'storage slots of a catalogue made by this command', '64')
    .action(async (args: string[], o: { catalogue: string; json?: boolean; category?: string; copyMode?: string; slots: string }) => {
      const volsers = expandVolsers(args);
      const cm = o.copyMode;
      if (cm !== undefined && cm !== 'immediate' && cm !== 'deferred') throw new UsageError(`--copy-mode must be immediate or deferred (got ${JSON.stringify(cm)})`);
      const slots = Number(o.slots);
      if (!Number.isInteger(slots) || slots < 1 || slots > 4000) throw new UsageError(`--slots must be a whole number 1..4000 (got ${JSON.stringify(o.slots)})`);
      const cg = category(o.category);
      const added = await guarded(async () => {
        const c = await VolumeCatalogue.create(o.catalogue, slots);
        return c.insert(volsers, { ...(cg === undefined ? {} : { category: cg }), ...(cm === undefined ? {} : { copyMode: cm }) });
      });
      if (o.json === true) out.line(JSON.stringify({ format: 'ptpvts.volumes-insert/1', inserted: added.map(entryView) }, null, 2));
      else out.line(`inserted ${added.length} volume${added.length === 1 ? '' : 's'} (${added[0]?.category ?? 'scratch'}): ${added.map((e) => `${e.volser} slot ${e.slot + 1}`).join(', ')}`);
    });

  cat(vols.command('eject'))
    .description('eject volumes from the catalogue (their data stays on the VTS); a volume in a drive leaves when unloaded')
    .argument('<volsers...>', 'volsers or ranges')
    .action(async (args: string[], o: { catalogue: string; json?: boolean }) => {
      const volsers = expandVolsers(args);
      const c = new VolumeCatalogue(o.catalogue);
      const gone: CatalogueEntry[] = [];
      // Each volume on its own: one not in the catalogue fails the command after the others.
      const missing: string[] = [];
      for (const v of volsers) {
        try {
          gone.push(await guarded(() => c.eject(v)));
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
          missing.push(v);
        }
      }
      if (o.json === true) out.line(JSON.stringify({ format: 'ptpvts.volumes-eject/1', ejected: gone.map(entryView), notInCatalogue: missing }, null, 2));
      else if (gone.length > 0) out.line(`ejected ${gone.map((e) => e.volser).join(', ')}`);
      if (missing.length > 0) throw new UsageError(`not in the catalogue: ${missing.join(', ')}`);
    });

  cat(vols.command('show'))
    .description("one volume: its category and slot, and with --topology each VTS's token, size and whether it is mounted")
    .argument('<volser>', 'the volser')
    .option('-t, --topology <file>', 'ask both VTS of this PtP system (as the operator)')
    .action(async (arg: string, o: { catalogue: string; json?: boolean; topology?: string }) => {
      const [volser] = expandVolsers([arg]);
      if (volser === undefined || expandVolsers([arg]).length !== 1) throw new UsageError(`show takes one volser (got ${JSON.stringify(arg)})`);
      const e = await guarded(() => new VolumeCatalogue(o.catalogue).get(volser));
      if (e === undefined) throw new UsageError(`volume ${volser} is not in the catalogue ${o.catalogue}`);
      const vts = o.topology === undefined ? null : await guarded(() => vtsRecords(o.topology as string, volser));
      if (o.json === true) {
        out.line(JSON.stringify({ format: 'ptpvts.volume/1', volume: entryView(e), vts }, null, 2));
        return;
      }
      out.line(`${e.volser}: ${e.category}, home slot ${e.slot + 1}, copy mode ${e.copyMode ?? "the VTC's default"}, inserted ${new Date(e.insertedAt).toISOString()}`);
      if (vts !== null) {
        for (const x of VTS_NAMES) {
          const r = vts[x];
          if (r.reachable !== true) out.line(`  VTS ${x}: unreachable (${String(r.error)})`);
          else if (r.present !== true) out.line(`  VTS ${x}: holds no generation`);
          else out.line(`  VTS ${x}: generation ${String(r.generation)}${r.consistent === true ? '' : ` (behind: data of generation ${String(r.dataGeneration)})`}, ${String(r.bytes)} bytes${r.mounted === true ? ', mounted' : ''}`);
        }
      }
    });
}
