/**
 * The emulator engine: what every emulated logical unit is made of. A device model
 * (tape drive, changer) is a plain object `D`; an {@link EmulatedUnit} wraps it with a
 * {@link DispatchTable} of {@link CommandSpec}s (the SPC ones from firmware-sim/spc plus its
 * own), unit attentions, mode and log page registries, and the rules every command shares.
 *
 * Handlers: `(x: Exec<D>) => Uint8Array | undefined | {data?, sense?}` (sync or async).
 * Throw `CheckCondition` (or use `fail`, `invalidCdbField`, `invalidParamField`) for CHECK
 * CONDITION; any other throw is an emulator bug: the unit answers HARDWARE ERROR /
 * INTERNAL TARGET FAILURE and records it in `unit.bugs`. The engine has already checked
 * opcode, service action, CDB length and reserved bits (from `usage`) and reported any
 * pending unit attention before a handler runs. Wait with `mechanicalDelay(seconds,
 * unit.timeScale, x.signal)`; a hung command uses `hangUntilAborted(x.signal)`.
 */
export * from './check.js';
export * from './dispatch.js';
export * from './lazy-abort.js';
export * from './library-link.js';
export * from './log-pages.js';
export * from './mode-pages.js';
export * from './timing.js';
export * from './types.js';
export * from './unit-attention.js';
export * from './unit.js';
