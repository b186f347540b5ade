/**
 * The SPC commands every emulated unit shares. A device model builds its dispatch table
 * from {@link spcCommands} plus its own command set, then calls {@link installSpc}.
 */
import type { CommandSpec } from '../engine/dispatch.js';
import type { EmulatedUnit } from '../engine/unit.js';
import { basicCommands } from './basic.js';
import { inquiryCommand } from './inquiry.js';
import { logCommands } from './log.js';
import { controlModePage, modeCommands } from './mode.js';
import { reportOpcodesCommand } from './report-opcodes.js';

export { standardInquiry, vpdPages } from './inquiry.js';
export { controlModePage } from './mode.js';

/** The shared commands, typed for any device model (they only use the unit's registries and hooks). */
export function spcCommands<D>(): CommandSpec<D>[] {
  return [...basicCommands, inquiryCommand, ...modeCommands, ...logCommands, reportOpcodesCommand] as unknown as CommandSpec<D>[];
}

/** Registers what every unit has: the control mode page. */
export function installSpc<D>(unit: EmulatedUnit<D>): void {
  unit.modePages.add(controlModePage(unit as unknown as EmulatedUnit<unknown>));
}
