/** Scenarios: the file format, the in-process runner, the built-in claim scenarios and the SVG timeline. */
export { parseScenario, loadScenarioFile, scenarioSchema, ScenarioFileError } from './schema.js';
export type { Scenario, ParsedScenario, Step, Expectation } from './schema.js';
export { runScenario, describeStep, ScenarioMismatchError } from './runner.js';
export type { ScenarioResult, StepReport, RunOptions } from './runner.js';
export { BUILTIN_SCENARIOS, builtinScenario } from './builtins.js';
export { timelineSvg } from './svg.js';
export type { TimelineInput } from './svg.js';
export { LocalCluster, FAST_TIMING } from './cluster.js';
export type { ClusterOptions, ClusterEvent } from './cluster.js';
