/**
 * Everything that crosses a process boundary in AIMatrix Studio, in one module that
 * both ends import: settings, and (as the runtime arrives) the runtime's JSON-RPC
 * methods and the webviews' messages.
 */
export * from './settings.js';
export * from './trace.js';
export * from './runtime-rpc.js';

/** Language ids and file extensions of the two languages. */
export const LANGUAGES = [
    { id: 'twin', extension: '.twin' },
    { id: 'agent', extension: '.agent' }
] as const;
