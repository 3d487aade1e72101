/** The simulation engine: compile a checked twin, run replications of it. */
export * from './api.js';
export { compileTwin, CompileError, nodeLocation, streamName, type CompileOptions, type CompiledTwin } from './compile.js';
export { Xoshiro128, Mulberry32, streamState, type Uniform } from './random.js';
