export { SerialRobot, SerialRobotError } from './serial-robot.js';
export type { RobotCallOptions, RobotInventory, SerialRobotErrorCode, SerialRobotOptions, SerialRobotStats } from './serial-robot.js';
export {
  LineSplitter,
  MAX_LINE_LENGTH,
  MAX_TAG,
  RobotErrorCode,
  RobotVerb,
  UNTAGGED,
  checksum,
  formatData,
  formatErr,
  formatInventoryLine,
  formatOk,
  formatRequest,
  formatStatus,
  parseAddress,
  parseInventoryLine,
  parseReply,
  parseRequest,
  parseStatus,
  parseTag,
  robotErrorName,
  stripChecksum,
  withChecksum,
} from './protocol.js';
export type { InventoryLine, LineEvent, RequestError, RobotErrorName, RobotReply, RobotRequest, RobotStatus } from './protocol.js';
