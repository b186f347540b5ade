/** Cartridge files: the format, the open cartridge used by drives, and the media check. */
export { Cartridge, CartridgeStateError, CartridgeWriteError, MediaReadError, createCartridgeFile } from './cartridge.js';
export { nodeFileIo } from './file-io.js';
export type { CartridgeFileIo } from './file-io.js';
export type { CartridgeInit, CartridgeOpenOptions, TapeObject, TapeObjectKind } from './cartridge.js';
export { checkCartridge, formatCartridgeReport } from './check.js';
export type { CartridgeReport, DamagedRecord } from './check.js';
export { CartridgeFormatError, FORMAT_VERSION, LOG_OFFSET, RECORD_HEADER_SIZE, RecordKind } from './format.js';
export type { CartridgeHeader, StoredAttribute } from './format.js';
