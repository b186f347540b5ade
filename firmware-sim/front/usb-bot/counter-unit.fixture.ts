/**
 * A small emulated unit for front tests: the SPC commands plus one that counts, one that
 * hangs until aborted and one that takes Data-Out, so a front can be exercised without a
 * drive or changer model.
 */
import { installSpc, spcCommands } from '../../spc/index.js';
import { DispatchTable, hangUntilAborted, usage, type CommandSpec } from '../../engine/index.js';
import { EmulatedUnit } from '../../engine/unit.js';
import { StoredModePage } from '../../engine/mode-pages.js';

export interface Counter {
  value: number;
  ready: boolean;
  lastOut?: Uint8Array;
}

export const BUMP = 0xc0;
export const HANG = 0xc1;
export const PUT = 0xc3;

export function counterUnit(name = 'test/counter', serial = 'C0FFEE01'): EmulatedUnit<Counter> {
  const own: CommandSpec<Counter>[] = [
    { opcode: BUMP, name: 'BUMP', usage: usage(6, { 4: 0xff }), handler: (x) => { x.device.value += x.cdb[4] ?? 0; return Uint8Array.of(x.device.value); } },
    { opcode: HANG, name: 'HANG', usage: usage(6), handler: (x) => hangUntilAborted(x.signal) },
    { opcode: PUT, name: 'PUT', usage: usage(6, { 4: 0xff }), handler: (x) => { x.device.lastOut = x.dataOut ? Uint8Array.from(x.dataOut) : new Uint8Array(0); return undefined; } },
  ];
  const device: Counter = { value: 0, ready: true };
  const unit = new EmulatedUnit<Counter>({
    name,
    deviceType: 0x01,
    identity: { vendor: 'PTPVTS', product: 'COUNTER', revision: '0001', serial },
    table: new DispatchTable<Counter>([...spcCommands<Counter>(), ...own]),
    device,
    hooks: { notReady: () => (device.ready ? undefined : { key: 2, asc: 0x3a, ascq: 0 }) },
  });
  installSpc(unit);
  unit.modePages.add(new StoredModePage(0x10, Uint8Array.of(0x10, 0x02, 0x00, 0x05), Uint8Array.of(0, 0, 0xff, 0x00)));
  return unit;
}
