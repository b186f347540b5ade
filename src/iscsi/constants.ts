/** Numbers of RFC 7143 that both ends of ptpvts's iSCSI use. */

/** PDU opcodes (byte 0, bits 0-5). Initiator opcodes are below 0x20, target opcodes above. */
export const Opcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

const opcodeNames = new Map<number, string>(Object.entries(Opcode).map(([k, v]) => [v, k.replace(/_/g, ' ')]));
export function opcodeName(op: number): string {
  return opcodeNames.get(op) ?? `opcode 0x${op.toString(16).padStart(2, '0')}`;
}

/** Basic Header Segment length. */
export const BHS_LENGTH = 48;
/** Initiator/Target Task Tag value meaning "none". */
export const RESERVED_TAG = 0xffffffff;

/** Reject PDU reasons (RFC 7143 11.17.1). */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  OUT_OF_RESOURCES: 0x0a,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Login stages (CSG/NSG). 2 is reserved. */
export const LoginStage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;
export type LoginStage = (typeof LoginStage)[keyof typeof LoginStage];

/** Login response Status-Class << 8 | Status-Detail (RFC 7143 11.13.5). */
export const LoginStatus = {
  SUCCESS: 0x0000,
  TARGET_MOVED_TEMPORARILY: 0x0101,
  TARGET_MOVED_PERMANENTLY: 0x0102,
  INITIATOR_ERROR: 0x0200,
  AUTHENTICATION_FAILURE: 0x0201,
  AUTHORIZATION_FAILURE: 0x0202,
  NOT_FOUND: 0x0203,
  TARGET_REMOVED: 0x0204,
  UNSUPPORTED_VERSION: 0x0205,
  TOO_MANY_CONNECTIONS: 0x0206,
  MISSING_PARAMETER: 0x0207,
  CANT_INCLUDE_IN_SESSION: 0x0208,
  SESSION_TYPE_NOT_SUPPORTED: 0x0209,
  SESSION_DOES_NOT_EXIST: 0x020a,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
  SERVICE_UNAVAILABLE: 0x0301,
  OUT_OF_RESOURCES: 0x0302,
} as const;
export type LoginStatus = (typeof LoginStatus)[keyof typeof LoginStatus];

const loginStatusNames = new Map<number, string>(Object.entries(LoginStatus).map(([k, v]) => [v, k.replace(/_/g, ' ').toLowerCase()]));
export function loginStatusName(classDetail: number): string {
  return loginStatusNames.get(classDetail) ?? `status 0x${classDetail.toString(16).padStart(4, '0')}`;
}

/** Task management function codes (byte 1 of the TMF request). */
export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;
export type TmfFunction = (typeof TmfFunction)[keyof typeof TmfFunction];

/** Task management response codes. */
export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  REASSIGNMENT_NOT_SUPPORTED: 4,
  NOT_SUPPORTED: 5,
  AUTHORIZATION_FAILED: 6,
  REJECTED: 255,
} as const;
export type TmfResponse = (typeof TmfResponse)[keyof typeof TmfResponse];

/** Logout reason codes. */
export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 } as const;
/** Logout response codes. */
export const LogoutResponse = { SUCCESS: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 } as const;

/** Async message events. */
export const AsyncEvent = {
  SCSI_EVENT: 0,
  LOGOUT_REQUESTED: 1,
  CONNECTION_DROP: 2,
  SESSION_DROP: 3,
  NEGOTIATION_REQUEST: 4,
  TASK_TERMINATION: 5,
  VENDOR: 255,
} as const;

/** SCSI Response byte 2. */
export const ScsiResponseCode = { COMMAND_COMPLETED: 0x00, TARGET_FAILURE: 0x01 } as const;
