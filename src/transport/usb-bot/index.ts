export { UsbBotDevice, UsbBotPort, findBotEndpoints } from './usb-bot-port.js';
export type { UsbBotOptions, UsbBotStats } from './usb-bot-port.js';
export { listUsbDevices, openUsbBot, openUsbBotPort, parseUsbSelector, UsbUnavailableError } from './discovery.js';
export type { UsbDeviceInfo, UsbLister, UsbSelector } from './discovery.js';
export {
  BOT_MAX_CDB,
  BOT_MAX_LUN,
  BotFramingError,
  BotRequest,
  CBW_LENGTH,
  CBW_SIGNATURE,
  CSW_LENGTH,
  CSW_SIGNATURE,
  CswStatus,
  MassStorage,
  decodeCbw,
  decodeCsw,
  encodeCbw,
  encodeCsw,
} from './bot-wrappers.js';
export type { CommandBlockWrapper, CommandStatusWrapper } from './bot-wrappers.js';
export { bytesOf, isStallError, isTimeoutError } from './usb-device.js';
export type {
  BotUsbDevice,
  UsbAlternateInfo,
  UsbConfigurationInfo,
  UsbControlSetup,
  UsbDirection,
  UsbEndpointInfo,
  UsbInResult,
  UsbInterfaceInfo,
  UsbOutResult,
  UsbTransferStatus,
} from './usb-device.js';
