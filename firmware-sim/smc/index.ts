/** The emulated medium changer (SMC-3): model, command set, element status and pages. */
export { ChangerModel, MoveVetoed, OperatorActionError } from './changer.js';
export type { ChangerDrive, ChangerModelOptions, DoorName, FieldBytes, MoveEvent, MoveHook, Occupant } from './changer.js';
export { createChangerUnit } from './changer-unit.js';
export type { ChangerUnitOptions } from './changer-unit.js';
export { smcCommands } from './commands.js';
export { encodeElementStatus, selectElements } from './element-status.js';
export type { ElementStatusRequest } from './element-status.js';
export { ElementKind, ElementMap, elementKindName, elementKindTag } from './elements.js';
export type { ElementInfo, ElementLayout } from './elements.js';
export { deviceCapabilitiesPage, elementAddressPage, temperatureLogPage, transportGeometryPage } from './pages.js';
export type { AssignedVolumeTags, ReportedVolumeTags, Translation } from './changer.js';
export { encodeElementPages } from './element-status.js';
export { SendAction, TEMPLATE_LENGTH, decodeTemplate, describeAction, matchesPattern, tagMatches } from './volume-tags.js';
export type { TagKind, VolumeTagValue, VolumeTemplate } from './volume-tags.js';
