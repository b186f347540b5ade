/**
 * How a handler says CHECK CONDITION: it throws a {@link CheckCondition} carrying the
 * sense. Anything else a handler throws is an emulator bug (answered with HARDWARE ERROR /
 * INTERNAL TARGET FAILURE and recorded), so the two can never be confused.
 */
import { Sense, sense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';

export class CheckCondition extends Error {
  override readonly name = 'CheckCondition';
  constructor(
    readonly sense: SenseData,
    /** Data-In bytes to return along with the CHECK CONDITION (a short READ, for one). */
    readonly data?: Uint8Array,
  ) {
    super(`CHECK CONDITION key=0x${sense.key.toString(16)} asc=0x${sense.asc.toString(16)} ascq=0x${sense.ascq.toString(16)}`);
  }
}

/** Throws CHECK CONDITION with a catalogued condition. */
export function fail(code: SenseCode, extra: Omit<SenseData, 'key' | 'asc' | 'ascq'> = {}): never {
  throw new CheckCondition(sense(code, extra));
}

/** ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at `byte` (and `bit`, the field's MSB). */
export function invalidCdbField(byte: number, bit?: number): never {
  throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte, ...(bit === undefined ? {} : { bit }) } }));
}

/** ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST pointing into the Data-Out buffer. */
export function invalidParamField(byte: number, bit?: number): never {
  throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte, ...(bit === undefined ? {} : { bit }) } }));
}

/** ILLEGAL REQUEST / PARAMETER LIST LENGTH ERROR. */
export function parameterListLengthError(): never {
  throw new CheckCondition(sense(Sense.PARAMETER_LIST_LENGTH_ERROR));
}
