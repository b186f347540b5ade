/**
 * ptpvts's own SG_IO binding on a real Linux kernel: node and the built addon run inside
 * the QEMU guest (guest/sg-agent.mjs) and execute the host's commands on /dev/sgN, through
 * Linux's sg driver, virtio-scsi and QEMU's iSCSI initiator, to ptpvts's iSCSI target
 * serving an emulated library. The TapeDrive and MediaChanger clients on the host drive
 * it, as they would drive a real library on a lab machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { SenseError } from '../../src/devices/errors.js';
import { TapeDrive } from '../../src/devices/tape-drive.js';
import { DeviceType, SpaceCode } from '../../src/scsi/index.js';
import { describeSense, Sense, SenseKey, type SenseCode } from '../../src/scsi/sense.js';
import type { ScsiPort } from '../../src/transport/scsi-port.js';
import { GuestAgent } from './lib/agent-port.js';
import { connectAgentSocket, guestUnavailable, startGuest, type GuestRun, type RunningGuest } from './lib/guest.js';
import { startPtpvtsTarget, type PtpvtsLibraryTarget } from './lib/targets.js';

const why = guestUnavailable();

const AGENT_SCRIPT = `export PATH=/usr/bin:/usr/sbin:/bin:/sbin
port=""
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = ptpvts-agent ] && port=/dev/$(basename "$p"); done
echo "@@HIL agent-port $port"
[ -n "$port" ] || exit 1
node /opt/ptpvts/sg-agent.mjs "$port"
`;

async function expectSense(p: Promise<unknown>, code: SenseCode): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof SenseError)) throw new Error(`expected ${describeSense(code)}, got ${e === undefined ? 'success' : String(e)}`);
  expect(`${e.keyName} / ${e.ascName}`).toBe(describeSense(code));
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** Takes the POWER ON unit attention a new I_T nexus owes (and any other pending one). */
async function drain(dev: TapeDrive | MediaChanger): Promise<void> {
  for (let i = 0; i < 4; i++) {
    try {
      await dev.testUnitReady();
      return;
    } catch (e) {
      if (!(e instanceof SenseError) || e.key !== SenseKey.UNIT_ATTENTION) return;
    }
  }
}

describe.skipIf(why !== undefined)(`ptpvts SG_IO binding inside a QEMU guest, through sg, virtio-scsi and iSCSI to ptpvts's target${why ? ` (skipped: ${why})` : ''}`, () => {
  let target: PtpvtsLibraryTarget | undefined;
  let guest: RunningGuest | undefined;
  let agent: GuestAgent | undefined;
  let dir: string | undefined;
  let changer: MediaChanger;
  let drive: TapeDrive;
  const ports: ScsiPort[] = [];
  let consoleText = '';

  beforeAll(async () => {
    target = await startPtpvtsTarget();
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-agent-'));
    const socket = join(dir, 'agent.sock');
    let ready!: () => void;
    const agentReady = new Promise<void>((resolve) => (ready = resolve));
    const t0 = Date.now();
    guest = startGuest({
      script: AGENT_SCRIPT,
      luns: target.luns,
      agentSocket: socket,
      timeoutMs: 900_000,
      onOutput: (s) => {
        consoleText += s;
        if (consoleText.includes('@@HIL agent-ready')) ready();
      },
    });
    const ended = guest.done.then((r: GuestRun) => {
      throw new Error(`the guest stopped before its agent was ready:\n${r.output.slice(-4000)}`);
    });
    await Promise.race([agentReady, ended]);
    process.stdout.write(`[hil] SG_IO agent ready ${((Date.now() - t0) / 1000).toFixed(1)} s after QEMU started\n`);
    agent = new GuestAgent(await connectAgentSocket(socket));
    const devices = await agent.list();
    const changerPath = devices.find((d) => d.scsiType === DeviceType.mediumChanger)?.path;
    const tapePath = devices.find((d) => d.scsiType === DeviceType.sequentialAccess)?.path;
    if (!changerPath || !tapePath) throw new Error(`the guest lists no changer and tape: ${JSON.stringify(devices)}`);
    const cp = await agent.open(changerPath);
    const tp = await agent.open(tapePath);
    ports.push(cp, tp);
    const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 100))) };
    changer = new MediaChanger(cp, fast);
    drive = new TapeDrive(tp, fast);
    await drain(changer);
    await drain(drive);
  });

  afterAll(async () => {
    for (const p of ports) await p.close().catch(() => undefined);
    await agent?.quit();
    if (guest) {
      const t = setTimeout(() => guest?.kill(), 60_000);
      await guest.done;
      clearTimeout(t);
    }
    await target?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the changer and the tape drive among /dev/sg* with their identity', async () => {
    const devices = await agent!.list();
    expect(devices.map((d) => d.scsiType).sort()).toEqual([DeviceType.sequentialAccess, DeviceType.mediumChanger]);
    expect((await drive.inquiry()).deviceType).toBe(DeviceType.sequentialAccess);
    expect((await changer.inquiry()).deviceType).toBe(DeviceType.mediumChanger);
    expect((await drive.unitSerialNumber()).trim()).toBe('HILDRV0001');
  });

  it('an empty drive answers TEST UNIT READY with NOT READY / MEDIUM NOT PRESENT, passed up as sense data', async () => {
    await expectSense(drive.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
  });

  it('inventory shows the three cartridges in their slots and the drive empty', async () => {
    const inv = await changer.inventory();
    expect(inv.storage.filter((e) => e.full).map((e) => e.primaryVolumeTag?.identifier)).toEqual(['HIL001L8', 'HIL002L8', 'HIL003L8']);
    expect(inv.dataTransfer.map((e) => e.full)).toEqual([false]);
  });

  it('MOVE MEDIUM loads a cartridge into the drive, which becomes ready', async () => {
    const inv = await changer.inventory();
    await changer.move(inv.storage[0]!.address, inv.dataTransfer[0]!.address);
    await drive.waitReady({ timeoutMs: 60_000, intervalMs: 100 });
    expect((await changer.inventory()).dataTransfer[0]?.primaryVolumeTag?.identifier).toBe('HIL001L8');
  });

  const blocks = [pattern(1000, 1), pattern(64 * 1024, 2), pattern(256 * 1024, 3), pattern(77, 4)];
  // Reads leave SILI clear on this path: QEMU's iSCSI SG_IO passthrough (block/iscsi.c)
  // always reports a residual of 0, so a short block read with SILI would come back padded
  // to the buffer size. Without SILI the length comes from the ILI sense, as st does it.

  it('blocks up to 256 KiB and filemarks written are read back identical, with the filemark reported', async () => {
    await drive.rewind();
    await drive.writeBlock(blocks[0]!);
    await drive.writeBlock(blocks[1]!);
    await drive.writeFilemarks(1);
    await drive.writeBlock(blocks[2]!);
    await drive.writeBlock(blocks[3]!);
    await drive.writeFilemarks(1);
    await drive.rewind();
    expect(same((await drive.read(256 * 1024)).data, blocks[0]!)).toBe(true);
    expect(same((await drive.read(256 * 1024)).data, blocks[1]!)).toBe(true);
    expect((await drive.read(256 * 1024)).filemark).toBe(true);
    expect(same((await drive.read(256 * 1024)).data, blocks[2]!)).toBe(true);
    expect(same((await drive.read(256 * 1024)).data, blocks[3]!)).toBe(true);
  });

  it('a short block read reports ILI and its length; end of data is BLANK CHECK', async () => {
    await drive.rewind();
    expect(await drive.read(4096)).toMatchObject({ ili: true, blockLength: 1000 });
    await drive.spaceToEndOfData();
    expect((await drive.read(4096)).eod).toBe(true);
  });

  it('SPACE, LOCATE and READ POSITION agree on where the tape is', async () => {
    await drive.rewind();
    expect(await drive.position()).toMatchObject({ block: 0, bop: true });
    await drive.space(SpaceCode.filemarks, 1);
    expect(await drive.position()).toMatchObject({ block: 3, fileNumber: 1 });
    const stop = await drive.space(SpaceCode.blocks, 5);
    expect(stop).toMatchObject({ filemark: true, residue: 3 });
    await drive.space(SpaceCode.filemarks, -1);
    expect((await drive.position()).block).toBe(5);
    await drive.locate(1);
    expect(same((await drive.read(256 * 1024)).data, blocks[1]!)).toBe(true);
  });

  it('MOVE MEDIUM puts the cartridge back after UNLOAD, and the drive is empty again', async () => {
    await drive.unload();
    const inv = await changer.inventory();
    const home = inv.storage.find((e) => !e.full)!.address;
    await changer.move(inv.dataTransfer[0]!.address, home);
    expect((await changer.inventory()).storage.find((e) => e.address === home)?.primaryVolumeTag?.identifier).toBe('HIL001L8');
    await expectSense(drive.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
  });
});
