/** Cartridge files: the format, the open cartridge used by drives, and the media check. */
export { Cartridge, CartridgeStateError, CartridgeWriteError, MediaReadError, createCartridgeFile } from './cartridge.js';
export { nodeFileIo } from './file-io.js';
export type { CartridgeFileIo } from './file-io.js';
export type { CartridgeInit, CartridgeOpenOptions, TapeObject, TapeObjectKind } from './cartridge.js';
export { checkCartridge, formatCartridgeReport } from './check.js';
export type { CartridgeReport, DamagedRecord, PartitionReport } from './check.js';
export { CartridgeFormatError, FORMAT_VERSION, LOG_OFFSET, MAX_PARTITIONS, PARTITIONED_VERSION, RECORD_HEADER_SIZE, RecordKind } from './format.js';
export type { CartridgeHeader, StoredAttribute } from './format.js';
