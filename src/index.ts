/**
 * The public API of ptpvts, what `import ... from 'ptpvts'` gives:
 *
 * - device clients: {@link TapeDrive} (SSC) and {@link MediaChanger} (SMC), their result
 *   types and errors (sense named by key, ASC and ASCQ);
 * - the `ScsiPort` contract and its bindings: Linux SG_IO ({@link SgioPort}), iSCSI
 *   ({@link IscsiPort}), USB Bulk-Only ({@link UsbBotPort}, needs the optional `usb`
 *   package), serial robot consoles ({@link SerialRobot}, needs the optional `serialport`
 *   package) and pseudo-terminals;
 * - the PtP recovery protocol: the engine ({@link VtcEngine}) and its types, the VTC agent
 *   ({@link VtcAgent}) and the operator's client, and the VTS unit ({@link VtsUnit}).
 *
 * Every name of the protocol core is also under the `ptp` namespace; three of them share a
 * name with another layer and are there only: `ptp.Outcome` (the outcome of a VTS
 * operation; `Outcome` here is a SCSI command's), `ptp.copyVolume` (the token bookkeeping;
 * `copyVolume` here copies a volume between two VTS) and `ptp.formatStatus` (`formatStatus`
 * here is the serial robot's).
 *
 * The emulated drives and libraries (`firmware-sim/`) and the CLI are not part of it.
 */
export * from './devices/index.js';
export * from './transport/scsi-port.js';
export * from './transport/sgio/index.js';
export * from './transport/iscsi/index.js';
export * from './transport/usb-bot/index.js';
export * from './transport/serial-robot/index.js';
export * from './transport/pty/index.js';
export * from './ptp/index.js';
export * from './vtc/index.js';
export * from './vts/index.js';
export * as ptp from './ptp/index.js';

// Names two layers export: the one a user of that layer expects (see above).
export type { Outcome } from './devices/index.js';
export { formatStatus } from './transport/serial-robot/index.js';
export { copyVolume } from './vtc/index.js';
