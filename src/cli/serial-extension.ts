/**
 * `ptpvts sim serve ... --serial`: the library's robot console on a pseudo-terminal, beside
 * the iSCSI target, so a lab rig's serial robot client (or a person with a terminal
 * program) can drive the same library.
 */
import type { Command } from 'commander';
import { serveSerialConsole } from '../../firmware-sim/front/serial-console/index.js';
import type { SimServeExtension } from './sim-serve.js';

export const serialConsoleExtension: SimServeExtension = {
  options(cmd: Command) {
    cmd.option('--serial', 'also serve the robot console (docs/serial-robot-protocol.md) on a pseudo-terminal and print its path');
  },
  async start({ library, options }) {
    if (!options['serial']) return undefined;
    const served = serveSerialConsole(library);
    return {
      description: `The robot console (docs/serial-robot-protocol.md) is on ${served.ttyPath}.`,
      stop: async () => {
        await served.stop();
      },
    };
  },
};
