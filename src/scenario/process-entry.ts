// The PtP commands as a process of their own: what scenario runs against processes, the
// multi-host test and the recovery benchmark spawn.
import { Command } from 'commander';
import { consoleOut } from '../cli/output.js';
import { registerPtpCommands } from '../cli/ptp-commands.js';

const out = consoleOut();
const program = new Command('ptpvts').exitOverride();
registerPtpCommands(program, out);
program.parseAsync(process.argv).then(
  () => undefined,
  (e: unknown) => {
    const err = e as { code?: string; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) process.exitCode = 2;
    else {
      out.error(`ptpvts: ${err.message ?? String(e)}`);
      process.exitCode = 1;
    }
  },
);
