export { SgioPort, interpretCompletion, osTransportError, SG_MAX_CDB } from './sgio-port.js';
export type { SgioPortOptions } from './sgio-port.js';
export { openNativeExecutor } from './sg-executor.js';
export type { SgCommand, SgCompletion, SgExecutor } from './sg-executor.js';
export { listSgDevices, SgDeviceKind } from './sg-list.js';
export type { SgDeviceInfo, ListOptions } from './sg-list.js';
export { HostStatus, DriverStatus, DriverSuggest, hostStatusName, driverStatusName } from './sg-status.js';
