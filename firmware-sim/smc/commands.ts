/**
 * The SMC-3 command set of the changer, as dispatch table entries. Handlers decode the
 * CDB and call the {@link ChangerModel}; the model raises the motion errors. Optional
 * commands are present only when the personality has the capability, so REPORT SUPPORTED
 * OPERATION CODES and INVALID COMMAND OPERATION CODE follow the product.
 */
import { getU16, getU24 } from '../../src/scsi/bytes.js';
import { SmcOpcode, SpcOpcode } from '../../src/scsi/opcodes.js';
import { Sense } from '../../src/scsi/sense.js';
import { fail, invalidCdbField, parameterListLengthError } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';
import type { ChangerModel } from './changer.js';
import { encodeElementPages, encodeElementStatus } from './element-status.js';
import { TEMPLATE_LENGTH, decodeTemplate, describeAction } from './volume-tags.js';

type X = Exec<ChangerModel>;

/** The vendor-specific CONTROL byte bits that mtx's `eepos` sets in MOVE MEDIUM. */
const EEPOS = 0xc0;

function moveMedium(x: X): Promise<void> {
  const transport = getU16(x.cdb, 2);
  x.device.checkTransport(transport, 2);
  return x.device.move(getU16(x.cdb, 4), getU16(x.cdb, 6), x.signal, { transport: 2, source: 4, destination: 6 });
}

function exchangeMedium(x: X): Promise<void> {
  x.device.checkTransport(getU16(x.cdb, 2), 2);
  return x.device.exchange(getU16(x.cdb, 4), getU16(x.cdb, 6), getU16(x.cdb, 8), x.signal, { transport: 2, source: 4, destination: 6, second: 8 });
}

async function readElementStatus(x: X): Promise<Uint8Array> {
  const b1 = x.cdb[1] ?? 0;
  const volumeTags = (b1 & 0x10) !== 0;
  const elementType = b1 & 0x0f;
  const b6 = x.cdb[6] ?? 0;
  const currentData = (b6 & 0x02) !== 0;
  const deviceIds = (b6 & 0x01) !== 0;
  const caps = x.device.personality.capabilities;
  if (elementType > 4) invalidCdbField(1, 3);
  if (volumeTags && !caps.volumeTags) invalidCdbField(1, 4);
  if (deviceIds && !caps.deviceIdentifiers) invalidCdbField(6, 0);
  const alloc = getU24(x.cdb, 7);
  if (!currentData) await x.device.ensureCurrent(x.signal);
  const data = encodeElementStatus(x.device, { elementType, volumeTags, startingAddress: getU16(x.cdb, 2), count: getU16(x.cdb, 4), deviceIds });
  return allocation(data, alloc);
}

/**
 * SEND VOLUME TAG (SMC-3 6.16): CDB bytes 2..3 element address, byte 5 send action code,
 * bytes 8..9 parameter list length (40 for translate, assert and replace; 0 or 40 for
 * undefine, whose parameters are ignored).
 */
function sendVolumeTag(x: X): undefined {
  const address = getU16(x.cdb, 2);
  const code = (x.cdb[5] ?? 0) & 0x1f;
  const length = getU16(x.cdb, 8);
  const action = describeAction(code);
  if (!action) invalidCdbField(5, 4);
  if (action.op === 'undefine' ? length !== 0 && length !== TEMPLATE_LENGTH : length !== TEMPLATE_LENGTH) invalidCdbField(8, 7);
  if (x.dataOut.length < length) parameterListLengthError();
  const params = x.dataOut.subarray(0, length);
  if (action.op === 'translate') {
    x.device.translate(x.initiator, { action: code, start: address, template: decodeTemplate(params, true) }, { address: 2 });
    return undefined;
  }
  if (action.op === 'undefine') {
    x.device.setVolumeTag(code, address, undefined, { address: 2, action: 5 });
    return undefined;
  }
  const t = decodeTemplate(params, false);
  x.device.setVolumeTag(code, address, { identifier: t.pattern, sequence: t.minSequence }, { address: 2, action: 5 });
  return undefined;
}

/**
 * REQUEST VOLUME ELEMENT ADDRESS (SMC-3 6.7): the elements the initiator's last SEND
 * VOLUME TAG translate found, selected by element type (byte 1), starting address (2..3)
 * and number of elements (4..5), as element status pages behind an 8-byte header whose
 * byte 4 repeats the send action code. Without a translate first: COMMAND SEQUENCE ERROR.
 */
function requestVolumeElementAddress(x: X): Uint8Array {
  const b1 = x.cdb[1] ?? 0;
  const volumeTags = (b1 & 0x10) !== 0;
  const elementType = b1 & 0x0f;
  if (elementType > 4) invalidCdbField(1, 3);
  if (volumeTags && !x.device.personality.capabilities.volumeTags) invalidCdbField(1, 4);
  const start = getU16(x.cdb, 2);
  const count = getU16(x.cdb, 4);
  const alloc = getU24(x.cdb, 7);
  const found = x.device.translated(x.initiator);
  if (!found) fail(Sense.COMMAND_SEQUENCE_ERROR);
  const selected = found.elements.filter((e) => (elementType === 0 || e.kind === elementType) && e.address >= start).slice(0, count);
  const data = encodeElementPages(x.device, selected, { elementType, volumeTags, startingAddress: start, count, deviceIds: false });
  data[4] = found.action;
  return allocation(data, alloc);
}

function initializeElementStatus(x: X): Promise<void> {
  return x.device.initializeStatus(x.signal);
}

function initializeElementStatusWithRange(x: X): Promise<void> {
  const range = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  if (!range) return x.device.initializeStatus(x.signal);
  return x.device.initializeStatus(x.signal, { start: getU16(x.cdb, 2), count: getU16(x.cdb, 6), startByte: 2 });
}

function positionToElement(x: X): Promise<void> {
  x.device.checkTransport(getU16(x.cdb, 2), 2);
  return x.device.positionTo(getU16(x.cdb, 4), x.signal, { transport: 2, destination: 4 });
}

function preventAllow(x: X): undefined {
  const prevent = (x.cdb[4] ?? 0) & 0x03;
  // SMC-3 defines only allow (00b) and prevent (01b); the persistent forms belong to other device types.
  if (prevent > 1) invalidCdbField(4, 1);
  x.device.setPrevent(x.initiator, prevent === 1);
  return undefined;
}

/** The changer's own commands for `model`'s personality (SPC commands come from firmware-sim/spc). */
export function smcCommands(model: ChangerModel): CommandSpec<ChangerModel>[] {
  const t = model.personality.timing;
  const caps = model.personality.capabilities;
  const moveTimeout = Math.ceil((t.moveSeconds + t.driveMoveExtraSeconds) * 2);
  const scanTimeout = Math.ceil(t.scanSecondsPerElement * model.elements.all().length * 2) + 10;
  const specs: CommandSpec<ChangerModel>[] = [
    {
      opcode: SmcOpcode.MOVE_MEDIUM,
      name: 'MOVE MEDIUM',
      // CONTROL byte bits 7-6 are vendor specific (SAM-5 5.2); mtx's `eepos` sets them to
      // extend or retract an import/export tray. This library's import/export station has
      // no tray to move, so the bits are accepted and the move is carried out as without them.
      usage: usage(12, { 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 11: EEPOS }),
      handler: moveMedium,
      nominalTimeout: moveTimeout,
      recommendedTimeout: moveTimeout * 5,
    },
    {
      opcode: SmcOpcode.READ_ELEMENT_STATUS,
      name: 'READ ELEMENT STATUS',
      usage: usage(12, { 1: 0x1f, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0x03, 7: 0xff, 8: 0xff, 9: 0xff }),
      handler: readElementStatus,
      nominalTimeout: scanTimeout,
      recommendedTimeout: scanTimeout * 2,
    },
    {
      opcode: SmcOpcode.INITIALIZE_ELEMENT_STATUS,
      name: 'INITIALIZE ELEMENT STATUS',
      usage: usage(6),
      handler: initializeElementStatus,
      nominalTimeout: scanTimeout,
      recommendedTimeout: scanTimeout * 2,
    },
    {
      opcode: SpcOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
      name: 'PREVENT ALLOW MEDIUM REMOVAL',
      usage: usage(6, { 4: 0x03 }),
      handler: preventAllow,
      nominalTimeout: 1,
      recommendedTimeout: 10,
    },
  ];
  if (caps.exchange) {
    specs.push({
      opcode: SmcOpcode.EXCHANGE_MEDIUM,
      name: 'EXCHANGE MEDIUM',
      usage: usage(12, { 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }),
      handler: exchangeMedium,
      nominalTimeout: moveTimeout * 2,
      recommendedTimeout: moveTimeout * 10,
    });
  }
  if (caps.initializeWithRange) {
    specs.push({
      opcode: SmcOpcode.INITIALIZE_ELEMENT_STATUS_WITH_RANGE,
      name: 'INITIALIZE ELEMENT STATUS WITH RANGE',
      usage: usage(10, { 1: 0x03, 2: 0xff, 3: 0xff, 6: 0xff, 7: 0xff }),
      handler: initializeElementStatusWithRange,
      nominalTimeout: scanTimeout,
      recommendedTimeout: scanTimeout * 2,
    });
  }
  if (caps.volumeTags) {
    // A library that reads labels also keeps the tags a host sends and searches them.
    specs.push(
      {
        opcode: SmcOpcode.SEND_VOLUME_TAG,
        name: 'SEND VOLUME TAG',
        usage: usage(12, { 2: 0xff, 3: 0xff, 5: 0x1f, 8: 0xff, 9: 0xff }),
        handler: sendVolumeTag,
        nominalTimeout: 1,
        recommendedTimeout: 10,
      },
      {
        opcode: SmcOpcode.REQUEST_VOLUME_ELEMENT_ADDRESS,
        name: 'REQUEST VOLUME ELEMENT ADDRESS',
        usage: usage(12, { 1: 0x1f, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }),
        handler: requestVolumeElementAddress,
        nominalTimeout: 1,
        recommendedTimeout: 10,
      },
    );
  }
  if (caps.positionToElement) {
    specs.push({
      opcode: SmcOpcode.POSITION_TO_ELEMENT,
      name: 'POSITION TO ELEMENT',
      usage: usage(10, { 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff }),
      handler: positionToElement,
      nominalTimeout: Math.ceil(t.positionSeconds * 2),
      recommendedTimeout: Math.ceil(t.positionSeconds * 10),
    });
  }
  return specs;
}
