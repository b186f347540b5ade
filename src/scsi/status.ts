/** SCSI status codes (SAM-5). */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatus = (typeof ScsiStatus)[keyof typeof ScsiStatus];

const statusNames = new Map<number, string>(Object.entries(ScsiStatus).map(([k, v]) => [v, k.replace(/_/g, ' ')]));

/** `CHECK CONDITION`, or `status 0x..` for a value SAM does not define. */
export function statusName(status: number): string {
  return statusNames.get(status) ?? `status 0x${status.toString(16).padStart(2, '0')}`;
}
