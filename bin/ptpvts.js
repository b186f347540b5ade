#!/usr/bin/env -S node --initial-old-space-size=128
// Entry point of the `ptpvts` command. Runs the compiled CLI in dist/ when it is a complete
// build as new as the sources; in a checkout whose sources changed since (or that was never
// built, or whose build was cut short) it runs the sources through tsx instead, so that a
// stale or half-written dist/ never runs and no first run has to wait for the compiler.
// The Node options on the first line are src/node-flags.ts's (why there).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distState } from './dist-state.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

async function loadMain() {
  const state = distState(root);
  if (state.current) return (await import('../dist/src/cli/main.js')).main;
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    throw new Error(`the compiled CLI cannot be used (${state.why}) and tsx, to run the sources, is not installed; run \`npm install\` or \`npm run build:ts\` in ${root}`);
  }
  register();
  return (await import('../src/cli/main.ts')).main;
}

loadMain()
  .then((main) => main(process.argv))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      const message = err instanceof Error ? err.message : String(err);
      console.error(message.startsWith('ptpvts: ') ? message : `ptpvts: ${message}`);
      process.exitCode = 1;
    },
  );
