/** The model profiler: `profileModel` (used by `aimatrix profile` and the runtime server) and its report. */
export { profileModel, compareBatched, ProfileError, ProfileUsageError } from './profile.js';
export type { ProfileOptions, ProfileReport, ProfileRun, ProfileProgress } from './profile.js';
export type { OpRow, ParsedProfile } from './op-profile.js';
export { parseOrtProfile, findProfileFile } from './op-profile.js';
export type { GpuSample } from './gpu.js';
export type { LatencySummary } from './stats.js';
export { percentile, summarizeLatency } from './stats.js';
export { storeProfile, readProfile, formatProfile, PROFILES_FOLDER } from './report.js';
