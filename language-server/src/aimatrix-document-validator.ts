/**
 * Gives every diagnostic a stable code of ours, including Langium's own lexing,
 * parsing and linking errors, so that editors, the CLI and quick fixes see one scheme.
 */
import { DefaultDocumentValidator, DocumentValidator, type LangiumDocument, type ValidationOptions } from 'langium';
import type { CancellationToken, Diagnostic } from 'vscode-languageserver';
import { IssueCodes } from './issue-codes.js';

const LANGIUM_CODES: Record<string, string> = {
    [DocumentValidator.LexingError]: IssueCodes.LexingError,
    [DocumentValidator.ParsingError]: IssueCodes.SyntaxError,
    [DocumentValidator.LinkingError]: IssueCodes.UnresolvedReference
};

export class AiMatrixDocumentValidator extends DefaultDocumentValidator {
    override async validateDocument(document: LangiumDocument, options?: ValidationOptions, cancelToken?: CancellationToken): Promise<Diagnostic[]> {
        const diagnostics = await super.validateDocument(document, options, cancelToken);
        for (const d of diagnostics) {
            const langiumCode = (d.data as { code?: string } | undefined)?.code;
            if (d.code === undefined && langiumCode !== undefined) {
                d.code = LANGIUM_CODES[langiumCode] ?? langiumCode;
            }
        }
        return diagnostics;
    }
}

/** The stable code of a diagnostic, whichever part of the pipeline raised it. */
export function diagnosticCode(d: Diagnostic): string {
    if (typeof d.code === 'string') return d.code;
    const langiumCode = (d.data as { code?: string } | undefined)?.code;
    return (langiumCode && LANGIUM_CODES[langiumCode]) ?? langiumCode ?? 'unknown';
}
