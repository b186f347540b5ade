/**
 * `ptpvts demo`: the main job on the embedded emulator. It builds an emulated library,
 * takes its inventory, loads a cartridge, writes files separated by filemarks, finds and
 * reads them back, and puts the cartridge away, saying what it did at each step.
 */
import { copyFileSync, mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runPtpDemo } from './ptp-demo.js';
import { SpaceCode } from '../scsi/cdb.js';
import { defaultLibraryYaml } from './default-lab.js';
import { openEmbeddedLab } from './lab.js';
import { barcodeOf, elementLabel, loadCartridge, unloadCartridge } from './ops.js';
import { bytes, hex, type Out } from './output.js';
import { patternData, readFile, writeFile } from './tape-io.js';
import { checkCartridge } from '../../firmware-sim/media/index.js';

export interface DemoOptions {
  /** Keep the library here instead of a temporary directory. */
  readonly dir?: string;
  /** Where the timeline pictures go (default `ptpvts-demo` in the working directory). */
  readonly timelines?: string;
  /** Skip the PtP recovery stories (device layer only). */
  readonly devicesOnly?: boolean;
}

export async function runDemo(out: Out, o: DemoOptions = {}): Promise<void> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'ptpvts-demo-'));
  mkdirSync(dir, { recursive: true });
  const yaml = join(dir, 'library.yaml');
  writeFileSync(yaml, defaultLibraryYaml('demo'));
  const lab = await openEmbeddedLab(yaml, { persist: o.dir !== undefined });
  try {
    out.line(`ptpvts demo: an emulated IBM TS3100-style library with two LTO-8 drives, in ${dir}`);
    out.line('');
    const inv = await lab.changer.inventory();
    out.line(`1. Inventory (READ ELEMENT STATUS with volume tags): ${inv.storage.length} slots, ${inv.dataTransfer.length} drives, ${inv.importExport.length} import/export slot.`);
    for (const e of inv.all.filter((x) => x.full)) out.line(`   ${elementLabel(e, inv).padEnd(8)} ${hex(e.address)}  ${barcodeOf(e)}`);
    for (const [i, d] of lab.drives.entries()) {
      const q = await d.inquiry();
      out.line(`   drive ${i + 1}: ${q.vendor} ${q.product} serial ${await d.unitSerialNumber()}`);
    }
    out.line('');
    const loaded = await loadCartridge(lab, 'LAB001L8', 1);
    out.line(`2. MOVE MEDIUM ${loaded.barcode} from ${loaded.from} to drive 1; the drive threaded it and is ready.`);
    const drive = lab.drives[0]!;
    const files = [patternData(1_000_000, 1), patternData(3 * 256 * 1024 + 17, 2), patternData(4096, 3)];
    out.line('');
    out.line('3. Writing three files in 256 KiB variable blocks, each ended by a filemark:');
    const written: Awaited<ReturnType<typeof writeFile>>[] = [];
    for (const [i, f] of files.entries()) {
      const w = await writeFile(drive, f, 256 * 1024);
      written.push(w);
      out.line(`   file ${i}: ${bytes(w.bytes)} in ${w.blocks} blocks, sha256 ${w.sha256.slice(0, 16)}...`);
    }
    const end = await drive.position({ form: 'long' });
    out.line(`   now at block ${end.block}, file ${end.fileNumber}.`);
    out.line('');
    out.line('4. Rewind, SPACE 2 filemarks, and read file 2; then LOCATE back to block 0 and read file 0:');
    await drive.rewind();
    await drive.space(SpaceCode.filemarks, 2);
    const f2 = await readFile(drive, 256 * 1024);
    out.line(`   file 2: ${bytes(f2.data.length)} read, ${f2.sha256 === written[2]!.sha256 ? 'identical to what was written' : 'DIFFERENT from what was written'}`);
    await drive.locate(0);
    const f0 = await readFile(drive, 256 * 1024);
    out.line(`   file 0: ${bytes(f0.data.length)} read, ${f0.sha256 === written[0]!.sha256 ? 'identical to what was written' : 'DIFFERENT from what was written'}`);
    const f1 = await readFile(drive, 256 * 1024);
    out.line(`   file 1: ${bytes(f1.data.length)} read, ${f1.sha256 === written[1]!.sha256 ? 'identical to what was written' : 'DIFFERENT from what was written'}`);
    await drive.space(SpaceCode.filemarks, 1);
    const eod = await drive.read(256 * 1024);
    out.line(`   past file 2, the next READ ${eod.eod ? 'reports END-OF-DATA DETECTED (BLANK CHECK)' : `returned ${eod.data.length} bytes`}.`);
    out.line('');
    const un = await unloadCartridge(lab, 1);
    out.line(`5. Unloaded ${un.barcode} and the robot put it back in ${un.to}.`);
    const tapeFile = lab.emulated!.config.cartridges.find((c) => c.barcode === 'LAB001L8')!.path;
    const report = await checkCartridge(tapeFile);
    out.line(`6. Cartridge file check: ${report.damaged.length === 0 ? 'every record verifies' : `${report.damaged.length} damaged records`} (${tapeFile}).`);
    const ok = [f0, f1, f2].every((f, i) => f.sha256 === written[[0, 1, 2][i]!]!.sha256);
    out.line('');
    out.line(ok ? 'Devices: everything written read back identical.' : 'Devices: differences, see above.');
    if (!ok) process.exitCode = 1;
    if (!o.devicesOnly) {
      out.line('');
      const stories = await runPtpDemo(out, join(dir, 'ptp'));
      const pictures = resolve(o.timelines ?? 'ptpvts-demo');
      mkdirSync(pictures, { recursive: true });
      for (const f of readdirSync(join(dir, 'ptp')).filter((x) => x.endsWith('.svg'))) copyFileSync(join(dir, 'ptp', f), join(pictures, f));
      out.line('');
      out.line(`Timelines (SVG): ${pictures}/claim-1.svg and ${pictures}/claim-7.svg.`);
      out.line(stories ? 'PtP: both stories ended as the claims say.' : 'PtP: a story did not end as the claims say; see above.');
      if (!stories) process.exitCode = 1;
    }
    out.line('');
    out.line(process.exitCode ? 'Demo finished with problems.' : 'Demo finished.');
  } finally {
    await lab.close();
    if (!o.dir) rmSync(dir, { recursive: true, force: true });
  }
}
