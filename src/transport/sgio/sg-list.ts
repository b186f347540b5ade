/**
 * Discovery of SCSI generic nodes through sysfs (/sys/class/scsi_generic), with each
 * unit's type and identity and its st/ch node where the kernel bound one.
 */
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { TransportError } from '../scsi-port.js';

export const SgDeviceKind = { tape: 'tape', changer: 'changer', other: 'other' } as const;
export type SgDeviceKind = (typeof SgDeviceKind)[keyof typeof SgDeviceKind];

export interface SgDeviceInfo {
  /** `sg3` */
  readonly name: string;
  /** `/dev/sg3` */
  readonly path: string;
  /** `host:channel:target:lun`, when sysfs names the device that way. */
  readonly hctl?: string;
  /** From the peripheral device type: 1 tape, 8 medium changer. */
  readonly kind: SgDeviceKind;
  /** Peripheral device type as sysfs reports it, -1 when unreadable. */
  readonly scsiType: number;
  readonly vendor?: string;
  readonly model?: string;
  readonly rev?: string;
  /** Unit serial number (VPD page 0x80), when the kernel cached it. */
  readonly serial?: string;
  /** `/dev/nst3`: the st node, non-rewinding, for a tape drive bound to st. */
  readonly tapePath?: string;
  /** `/dev/sch0`: the ch node, for a changer bound to ch. */
  readonly changerPath?: string;
}

export interface ListOptions {
  /** The sysfs mount; default `/sys`. Tests point it at a fake tree. */
  readonly sysfsRoot?: string;
  /** Where device nodes live; default `/dev`. */
  readonly devRoot?: string;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    const t = (await readFile(path, 'latin1')).trim();
    return t.length > 0 ? t : undefined;
  } catch {
    return undefined;
  }
}

async function readSerial(path: string): Promise<string | undefined> {
  let page: Buffer;
  try {
    page = await readFile(path);
  } catch {
    return undefined;
  }
  if (page.length < 4 || page[1] !== 0x80) return undefined;
  const len = page.readUInt16BE(2);
  const s = page.subarray(4, 4 + len).toString('latin1').replace(/\0+$/, '').trim();
  return s.length > 0 ? s : undefined;
}

// Newer kernels: device/scsi_tape/nst0; older ones: device/scsi_tape:nst0.
async function boundNode(deviceDir: string, klass: string, pattern: RegExp): Promise<string | undefined> {
  const names: string[] = [];
  try {
    names.push(...(await readdir(join(deviceDir, klass))));
  } catch {
    // no such class directory
  }
  try {
    for (const e of await readdir(deviceDir)) if (e.startsWith(`${klass}:`)) names.push(e.slice(klass.length + 1));
  } catch {
    return undefined;
  }
  return names.filter((n) => pattern.test(n)).sort()[0];
}

/**
 * Lists the SCSI generic nodes. Rejects with a {@link TransportError} (code `ENOENT`)
 * when the kernel has no sg layer (no /sys/class/scsi_generic: the sg module is not
 * loaded or not built), and with the OS code when sysfs cannot be read. Attributes that
 * a device lacks are left out rather than failing the listing.
 */
export async function listSgDevices(options: ListOptions = {}): Promise<SgDeviceInfo[]> {
  const sys = options.sysfsRoot ?? '/sys';
  const dev = options.devRoot ?? '/dev';
  const classDir = join(sys, 'class', 'scsi_generic');
  let names: string[];
  try {
    names = await readdir(classDir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      throw new TransportError(
        'ENOENT',
        `this kernel has no SCSI generic (sg) layer: ${classDir} does not exist. Load the sg module (modprobe sg) on a machine with SCSI devices, or use another binding (iscsi, memory).`,
        { cause: err, ...(e.errno !== undefined ? { errno: Math.abs(e.errno) } : {}), syscall: 'scandir' },
      );
    }
    throw new TransportError(e.code ?? 'EIO', `cannot read ${classDir}: ${e.message}`, { cause: err, ...(e.errno !== undefined ? { errno: Math.abs(e.errno) } : {}), ...(e.syscall !== undefined ? { syscall: e.syscall } : {}) });
  }
  const out: SgDeviceInfo[] = [];
  for (const name of names.filter((n) => /^sg\d+$/.test(n)).sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)))) {
    const deviceDir = join(classDir, name, 'device');
    const typeText = await readText(join(deviceDir, 'type'));
    const scsiType = typeText !== undefined && /^\d+$/.test(typeText) ? Number(typeText) : -1;
    const kind: SgDeviceKind = scsiType === 1 ? 'tape' : scsiType === 8 ? 'changer' : 'other';
    let hctl: string | undefined;
    try {
      const h = basename(await realpath(deviceDir));
      if (/^\d+:\d+:\d+:\d+$/.test(h)) hctl = h;
    } catch {
      // a device without a resolvable link still lists
    }
    const [vendor, model, rev, serial] = await Promise.all([
      readText(join(deviceDir, 'vendor')),
      readText(join(deviceDir, 'model')),
      readText(join(deviceDir, 'rev')),
      readSerial(join(deviceDir, 'vpd_pg80')),
    ]);
    const nst = kind === 'tape' ? await boundNode(deviceDir, 'scsi_tape', /^nst\d+$/) : undefined;
    const sch = kind === 'changer' ? await boundNode(deviceDir, 'scsi_changer', /^sch\d+$/) : undefined;
    out.push({
      name,
      path: join(dev, name),
      kind,
      scsiType,
      ...(hctl !== undefined ? { hctl } : {}),
      ...(vendor !== undefined ? { vendor } : {}),
      ...(model !== undefined ? { model } : {}),
      ...(rev !== undefined ? { rev } : {}),
      ...(serial !== undefined ? { serial } : {}),
      ...(nst !== undefined ? { tapePath: join(dev, nst) } : {}),
      ...(sch !== undefined ? { changerPath: join(dev, sch) } : {}),
    });
  }
  return out;
}
