export { IscsiPort, openIscsiPort, type IscsiPortOptions } from './iscsi-port.js';
export { discoverTargets, type DiscoveredTarget } from '../../iscsi/discovery.js';
