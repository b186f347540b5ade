/**
 * Assembles the changer logical unit: SPC commands plus the SMC command set around a
 * {@link ChangerModel}, its mode and log pages, and the hooks through which the model
 * reports readiness, resets and unit attentions.
 */
import { DeviceType } from '../../src/scsi/opcodes.js';
import { DispatchTable } from '../engine/dispatch.js';
import { EmulatedUnit } from '../engine/unit.js';
import { installSpc, spcCommands } from '../spc/index.js';
import type { ChangerModel } from './changer.js';
import { smcCommands } from './commands.js';
import { deviceCapabilitiesPage, elementAddressPage, temperatureLogPage, transportGeometryPage } from './pages.js';

const SMC3 = 0x0480;

export interface ChangerUnitOptions {
  /** Stable name for logs, e.g. `lib0/changer`. */
  readonly name: string;
  /** Unit serial number (INQUIRY, VPD 80h). */
  readonly serial: string;
}

/** The changer LU for `model`. The model's unit attentions are raised for every initiator. */
export function createChangerUnit(model: ChangerModel, o: ChangerUnitOptions): EmulatedUnit<ChangerModel> {
  const p = model.personality;
  const unit = new EmulatedUnit<ChangerModel>({
    name: o.name,
    deviceType: DeviceType.mediumChanger,
    identity: { vendor: p.vendor, product: p.product, revision: p.revision, serial: o.serial, versionDescriptors: [SMC3] },
    table: new DispatchTable<ChangerModel>([...spcCommands<ChangerModel>(), ...smcCommands(model)]),
    device: model,
    hooks: {
      notReady: () => model.notReady(),
      onReset: (kind) => {
        if (kind === 'power-on') void model.powerOn();
        else model.reset();
      },
    },
    timeScale: model.timeScale,
  });
  installSpc(unit);
  unit.modePages.add(elementAddressPage(model)).add(transportGeometryPage(model)).add(deviceCapabilitiesPage(model));
  unit.logPages.add(temperatureLogPage(model));
  model.onAttention((code) => unit.raise(code));
  return unit;
}
