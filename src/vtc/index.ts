/** Public surface of the VTC layer: the agent, the VTS process's server, the operator client, and their errors. */
export { VtcAgent, IoSelection, summarizeKey } from './agent.js';
export type { VtcAgentOptions, Address, HostHandle, CloseResult, AgentStatus, AgentEvent, BallotView, ElectionView, KeySummary } from './agent.js';
export { VtsHost } from './vts-host.js';
export type { VtsHostOptions } from './vts-host.js';
export { VtsServer } from './vts-server.js';
export { VtsClient } from './vts-client.js';
export { RemoteVtsPort } from './vts-port.js';
export { CopyQueue, copyVolume } from './copier.js';
export { ControlClient } from './control-client.js';
export { RpcClient, RpcServer, participants, OPERATOR, MAX_BODY } from './rpc.js';
export { FaultyTransport, noFaults } from './faults.js';
export type { LinkFaults } from './faults.js';
export * from './errors.js';
