/**
 * A small emulated target for the iSCSI tests: two LUNs of a toy device with a buffer
 * to write and read back (any size), a command that hangs until aborted, and the SPC set.
 */
import { installSpc, spcCommands } from '../../spc/index.js';
import { DispatchTable, hangUntilAborted, usage, type CommandSpec } from '../../engine/index.js';
import { EmulatedUnit } from '../../engine/unit.js';
import type { EmulatedTarget, LogicalUnit } from '../../engine/types.js';

export interface ToyDevice {
  /** One buffer per I_T nexus, so concurrent sessions cannot overwrite each other's data. */
  buffers: Map<string, Uint8Array>;
}

/** WRITE BUFFER-like: stores Data-Out. Bytes 2-4: transfer length (24-bit). */
export const PUT = 0xc4;
/** READ BUFFER-like: returns the buffer this initiator stored. Bytes 2-4: allocation length. */
export const GET = 0xc3;
export const HANG = 0xc1;

export function putCdb(length: number): Uint8Array {
  return Uint8Array.of(PUT, 0, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff, 0);
}
export function getCdb(length: number): Uint8Array {
  return Uint8Array.of(GET, 0, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff, 0);
}
export const hangCdb = (): Uint8Array => Uint8Array.of(HANG, 0, 0, 0, 0, 0);

export function toyUnit(name: string): EmulatedUnit<ToyDevice> {
  const device: ToyDevice = { buffers: new Map() };
  const own: CommandSpec<ToyDevice>[] = [
    { opcode: PUT, name: 'PUT', usage: usage(6, { 2: 0xff, 3: 0xff, 4: 0xff }), handler: (x) => { x.device.buffers.set(x.initiator, Uint8Array.from(x.dataOut)); return undefined; } },
    { opcode: GET, name: 'GET', usage: usage(6, { 2: 0xff, 3: 0xff, 4: 0xff }), handler: (x) => x.device.buffers.get(x.initiator) ?? new Uint8Array(0) },
    { opcode: HANG, name: 'HANG', usage: usage(6), handler: (x) => hangUntilAborted(x.signal) },
  ];
  const unit = new EmulatedUnit<ToyDevice>({
    name,
    deviceType: 0x01,
    identity: { vendor: 'PTPVTS', product: 'ISCSI TOY', revision: '0001', serial: name.replace(/\W/g, '').toUpperCase() },
    table: new DispatchTable<ToyDevice>([...spcCommands<ToyDevice>(), ...own]),
    device,
  });
  installSpc(unit);
  return unit;
}

export class ToyTarget implements EmulatedTarget {
  readonly units: EmulatedUnit<ToyDevice>[];
  constructor(readonly name = 'toylib', count = 2) {
    this.units = Array.from({ length: count }, (_, i) => toyUnit(`${name}/lun${i}`));
    for (const u of this.units) u.lunList = () => this.units.map((_, i) => i);
  }
  luns(): ReadonlyMap<number, LogicalUnit> {
    return new Map(this.units.map((u, i) => [i, u]));
  }
}
