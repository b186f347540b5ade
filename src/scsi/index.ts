/** Public surface of the pure SCSI codec shared by clients and the emulator. */
export * from './bytes.js';
export * from './status.js';
export * from './opcodes.js';
export * from './sense.js';
export * as Cdb from './cdb.js';
export type { Command } from './cdb.js';
export { CdbArgumentError, ElementType, SpaceCode } from './cdb.js';
