/**
 * Names of the Linux SCSI midlayer's host and driver status values, as the sg driver
 * reports them in sg_io_hdr (include/scsi/scsi_status.h and scsi/sg.h of the kernel ABI).
 */

export const HostStatus = {
  DID_OK: 0x00,
  DID_NO_CONNECT: 0x01,
  DID_BUS_BUSY: 0x02,
  DID_TIME_OUT: 0x03,
  DID_BAD_TARGET: 0x04,
  DID_ABORT: 0x05,
  DID_PARITY: 0x06,
  DID_ERROR: 0x07,
  DID_RESET: 0x08,
  DID_BAD_INTR: 0x09,
  DID_PASSTHROUGH: 0x0a,
  DID_SOFT_ERROR: 0x0b,
  DID_IMM_RETRY: 0x0c,
  DID_REQUEUE: 0x0d,
  DID_TRANSPORT_DISRUPTED: 0x0e,
  DID_TRANSPORT_FAILFAST: 0x0f,
  DID_TARGET_FAILURE: 0x10,
  DID_NEXUS_FAILURE: 0x11,
  DID_ALLOC_FAILURE: 0x12,
  DID_MEDIUM_ERROR: 0x13,
  DID_TRANSPORT_MARGINAL: 0x14,
} as const;
export type HostStatus = (typeof HostStatus)[keyof typeof HostStatus];

/** Low nibble of driver_status. */
export const DriverStatus = {
  DRIVER_OK: 0x00,
  DRIVER_BUSY: 0x01,
  DRIVER_SOFT: 0x02,
  DRIVER_MEDIA: 0x03,
  DRIVER_ERROR: 0x04,
  DRIVER_INVALID: 0x05,
  DRIVER_TIMEOUT: 0x06,
  DRIVER_HARD: 0x07,
  /** Sense data was returned: not a failure, the sense travels with the status. */
  DRIVER_SENSE: 0x08,
} as const;
export type DriverStatus = (typeof DriverStatus)[keyof typeof DriverStatus];

/** High nibble of driver_status (older kernels). */
export const DriverSuggest = {
  SUGGEST_RETRY: 0x10,
  SUGGEST_ABORT: 0x20,
  SUGGEST_REMAP: 0x30,
  SUGGEST_DIE: 0x40,
  SUGGEST_SENSE: 0x80,
} as const;

const hostNames = new Map<number, string>(Object.entries(HostStatus).map(([k, v]) => [v, k]));
const driverNames = new Map<number, string>(Object.entries(DriverStatus).map(([k, v]) => [v, k]));
const suggestNames = new Map<number, string>(Object.entries(DriverSuggest).map(([k, v]) => [v, k]));

const hex = (v: number): string => `0x${v.toString(16).padStart(2, '0')}`;

/** `DID_BAD_TARGET (0x04)`; unknown values keep their number. */
export function hostStatusName(value: number): string {
  return `${hostNames.get(value) ?? 'DID_UNKNOWN'} (${hex(value)})`;
}

/** `DRIVER_ERROR|SUGGEST_ABORT (0x24)`. */
export function driverStatusName(value: number): string {
  const parts = [driverNames.get(value & 0x0f) ?? 'DRIVER_UNKNOWN'];
  const suggest = suggestNames.get(value & 0xf0);
  if (suggest !== undefined) parts.push(suggest);
  return `${parts.join('|')} (${hex(value)})`;
}
