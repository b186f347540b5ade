/**
 * The changer's mode pages (SMC-3 7.3: element address assignment 1Dh, transport
 * geometry 1Eh, device capabilities 1Fh) and its log pages (temperature 0Dh, SPC-4). All
 * are read-only here: the changeable masks are zero, so MODE SELECT may send them back
 * unchanged but not alter them.
 */
import { setU16 } from '../../src/scsi/bytes.js';
import type { LogPage, LogParameter } from '../engine/log-pages.js';
import { modePageHeader, type ModePage } from '../engine/mode-pages.js';
import type { ChangerModel } from './changer.js';
import { ElementKind } from './elements.js';

/** A mode page computed from the model on every read, never changeable. */
class ComputedModePage implements ModePage {
  readonly subpage = 0;
  constructor(
    readonly page: number,
    private readonly build: () => Uint8Array,
  ) {}
  current(): Uint8Array {
    return this.build();
  }
  defaults(): Uint8Array {
    return this.build();
  }
  changeable(): Uint8Array {
    const b = new Uint8Array(this.build().length);
    b[0] = this.page;
    b[1] = b.length - 2;
    return b;
  }
  select(): void {
    // Nothing is changeable; the registry has already refused any changed bit.
  }
}

export function elementAddressPage(model: ChangerModel): ModePage {
  return new ComputedModePage(0x1d, () => {
    const b = modePageHeader(0x1d, 0, 0x12);
    const kinds = [ElementKind.transport, ElementKind.storage, ElementKind.importExport, ElementKind.dataTransfer];
    kinds.forEach((k, i) => {
      const r = model.elements.range(k);
      setU16(b, 2 + 4 * i, r.first);
      setU16(b, 4 + 4 * i, r.count);
    });
    return b;
  });
}

export function transportGeometryPage(model: ChangerModel): ModePage {
  return new ComputedModePage(0x1e, () => {
    const transports = model.elements.ofKind(ElementKind.transport);
    const b = modePageHeader(0x1e, 0, 2 * transports.length);
    // One descriptor per transport: ROTATE clear (LTO cartridges have one side), member number.
    transports.forEach((_t, i) => {
      b[2 + 2 * i] = 0;
      b[3 + 2 * i] = i;
    });
    return b;
  });
}

/** Bits of a capability byte: which element types a medium may go to (bit 0, the transport, is never set). */
const TO_ST = 0x02;
const TO_IE = 0x04;
const TO_DT = 0x08;

export function deviceCapabilitiesPage(model: ChangerModel): ModePage {
  return new ComputedModePage(0x1f, () => {
    const b = modePageHeader(0x1f, 0, 0x12);
    const has = (k: ElementKind): boolean => model.elements.ofKind(k).length > 0;
    // The transport holds a cartridge only in passing: it is no storage location (STORMT 0).
    const destinations = (has(ElementKind.storage) ? TO_ST : 0) | (has(ElementKind.importExport) ? TO_IE : 0) | (has(ElementKind.dataTransfer) ? TO_DT : 0);
    b[2] = destinations;
    // MOVE MEDIUM from MT, ST, IE, DT (bytes 4..7).
    b[4] = destinations;
    b[5] = destinations;
    b[6] = has(ElementKind.importExport) ? destinations : 0;
    b[7] = has(ElementKind.dataTransfer) ? destinations : 0;
    if (model.personality.capabilities.exchange) {
      // EXCHANGE MEDIUM with MT, ST, IE, DT (bytes 12..15).
      b[13] = destinations;
      b[14] = has(ElementKind.importExport) ? destinations : 0;
      b[15] = has(ElementKind.dataTransfer) ? destinations : 0;
    }
    return b;
  });
}

/** Temperature log page (SPC-4 7.3.21): current and reference temperature in degrees Celsius. */
export function temperatureLogPage(model: ChangerModel): LogPage {
  return {
    page: 0x0d,
    subpage: 0,
    name: 'temperature',
    parameters(): LogParameter[] {
      const clamp = (c: number): number => Math.max(0, Math.min(0xfe, Math.round(c)));
      return [
        { code: 0x0000, control: 0x03, value: Uint8Array.of(0, clamp(model.personality.temperatureCelsius)) },
        { code: 0x0001, control: 0x03, value: Uint8Array.of(0, clamp(model.personality.referenceTemperatureCelsius)) },
      ];
    },
  };
}
