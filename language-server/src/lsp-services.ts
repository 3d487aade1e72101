/**
 * The editor services (completion, hover, formatting, …) shared by both languages.
 * Each service lives in its own file; this list wires them into the module.
 */
import type { PartialLangiumServices } from 'langium/lsp';
import type { AiMatrixServices } from './aimatrix-module.js';

export function registerLspServices(): Pick<PartialLangiumServices, 'lsp'> & Record<string, unknown> {
    return {
        lsp: {
        }
    };
}

export type { AiMatrixServices };
