/** Public surface of the device clients: TapeDrive (SSC), MediaChanger (SMC) and their errors. */
export { TapeDrive } from './tape-drive.js';
export type { TapeDriveOptions, ReadResult, WriteResult, SpaceResult, TapePosition, BlockMode } from './tape-drive.js';
export { MediaChanger } from './media-changer.js';
export type { MediaChangerOptions, ElementStatusOptions, Inventory } from './media-changer.js';
export { ScsiDevice } from './scsi-device.js';
export type { DeviceOptions, WaitReadyOptions, ModeSenseCallOptions } from './scsi-device.js';
export { SenseError, VolumeOverflowError, StatusError, ResponseFormatError, isSenseError, informationOf } from './errors.js';
export type { CommandInfo, DecodedSense } from './errors.js';
export { issue, run, senseError, commandInfo, parseWith } from './command.js';
export type { CallOptions, Outcome, GoodOutcome, CheckOutcome } from './command.js';

// Result shapes the clients return, so callers need not reach into the codec.
export type { InquiryData, Designator, SequentialAccessCapabilities } from '../scsi/parse-inquiry.js';
export type { BlockLimits, DensityDescriptor, MediumTypeDescriptor } from '../scsi/parse-tape.js';
export type { ModeParameters, ModePage, BlockDescriptor, ModeSelectParameters } from '../scsi/parse-mode.js';
export type { LogPage, LogParameter, TapeAlert } from '../scsi/parse-log.js';
export type { DecodedAttribute, AttributeToWrite } from '../scsi/parse-attribute.js';
export { AttributeId, AttributeFormat, asciiAttribute, binaryAttribute, textAttribute } from '../scsi/parse-attribute.js';
export type { ElementStatus, VolumeTag, ElementAddressAssignment, TransportGeometry, DeviceCapabilities } from '../scsi/parse-element-status.js';
export type { ReportedLun } from '../scsi/parse-report-luns.js';
export type { SupportedCommand, OneCommandSupport, CommandTimeouts } from '../scsi/parse-supported-opcodes.js';
