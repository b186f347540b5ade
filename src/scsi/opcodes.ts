/**
 * Operation codes by command set. The same byte can mean different commands on
 * different device types (0x2B is LOCATE(10) on a tape drive and POSITION TO ELEMENT on
 * a changer), so each set is its own table and {@link opcodeName} takes the device type.
 */

/** Peripheral device types (SPC-4 table 49) used by ptpvts. */
export const DeviceType = {
  sequentialAccess: 0x01,
  mediumChanger: 0x08,
} as const;
export type DeviceType = (typeof DeviceType)[keyof typeof DeviceType];

/** Primary commands every device type implements here. */
export const SpcOpcode = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  INQUIRY: 0x12,
  MODE_SELECT_6: 0x15,
  RESERVE_6: 0x16,
  RELEASE_6: 0x17,
  MODE_SENSE_6: 0x1a,
  RECEIVE_DIAGNOSTIC_RESULTS: 0x1c,
  SEND_DIAGNOSTIC: 0x1d,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  LOG_SELECT: 0x4c,
  LOG_SENSE: 0x4d,
  MODE_SELECT_10: 0x55,
  MODE_SENSE_10: 0x5a,
  REPORT_LUNS: 0xa0,
  /** MAINTENANCE IN; service action 0x0C is REPORT SUPPORTED OPERATION CODES. */
  MAINTENANCE_IN: 0xa3,
} as const;

/** Stream (tape) commands, SSC-4. */
export const SscOpcode = {
  REWIND: 0x01,
  FORMAT_MEDIUM: 0x04,
  READ_BLOCK_LIMITS: 0x05,
  READ_6: 0x08,
  WRITE_6: 0x0a,
  WRITE_FILEMARKS_6: 0x10,
  SPACE_6: 0x11,
  VERIFY_6: 0x13,
  ERASE_6: 0x19,
  LOAD_UNLOAD: 0x1b,
  LOCATE_10: 0x2b,
  READ_POSITION: 0x34,
  REPORT_DENSITY_SUPPORT: 0x44,
  WRITE_FILEMARKS_16: 0x80,
  READ_16: 0x88,
  WRITE_16: 0x8a,
  READ_ATTRIBUTE: 0x8c,
  WRITE_ATTRIBUTE: 0x8d,
  SPACE_16: 0x91,
  LOCATE_16: 0x92,
  ERASE_16: 0x93,
} as const;

/** Media changer commands, SMC-3. */
export const SmcOpcode = {
  INITIALIZE_ELEMENT_STATUS: 0x07,
  POSITION_TO_ELEMENT: 0x2b,
  MOVE_MEDIUM: 0xa5,
  EXCHANGE_MEDIUM: 0xa6,
  READ_ELEMENT_STATUS: 0xb8,
  REQUEST_VOLUME_ELEMENT_ADDRESS: 0xb5,
  SEND_VOLUME_TAG: 0xb6,
  INITIALIZE_ELEMENT_STATUS_WITH_RANGE: 0xe7,
} as const;

/** Service actions of MAINTENANCE IN used here. */
export const MaintenanceInServiceAction = {
  REPORT_SUPPORTED_OPERATION_CODES: 0x0c,
} as const;

function invert(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([k, v]) => [v, k.replace(/_(\d+)$/u, '($1)').replace(/_/g, ' ')]));
}

const spcNames = invert(SpcOpcode);
const sscNames = invert(SscOpcode);
const smcNames = invert(SmcOpcode);

/** Trace name of an opcode for a device type, e.g. `WRITE(6)`; `opcode 0x..` if unknown. */
export function opcodeName(deviceType: number, opcode: number): string {
  const own = deviceType === DeviceType.sequentialAccess ? sscNames : deviceType === DeviceType.mediumChanger ? smcNames : undefined;
  return own?.get(opcode) ?? spcNames.get(opcode) ?? `opcode 0x${opcode.toString(16).padStart(2, '0')}`;
}

/** CDB length implied by the opcode's group code (SPC-4 4.2.5.1); undefined for reserved/vendor groups. */
export function cdbLengthForOpcode(opcode: number): number | undefined {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return undefined;
  }
}
