/**
 * Validates in-memory documents with the real services (no file system), so that
 * cross-file references and imports can be tested without touching the disk.
 */
import { EmptyFileSystem, type LangiumDocument } from 'langium';
import type { Diagnostic } from 'vscode-languageserver';
import { URI } from 'vscode-uri';
import { createAiMatrixServices, type AiMatrixLanguages } from '../../../language-server/src/aimatrix-module.js';
import { diagnosticCode } from '../../../language-server/src/aimatrix-document-validator.js';

export interface Validated {
    services: AiMatrixLanguages;
    documents: Map<string, LangiumDocument>;
    /** Diagnostics of one file, by its path as given. */
    diagnostics(file: string): Diagnostic[];
    /** Codes of one file's diagnostics (the first file when none is named). */
    codes(file?: string): string[];
    /** Diagnostics with a given code in one file (the first file when none is named). */
    withCode(code: string, file?: string): Diagnostic[];
}

/** The folder in-memory test files live in (absolute, so that relative model paths resolve). */
export const MEMORY_ROOT = '/aimatrix-test';

/**
 * Builds and validates a set of files given as `{ path: text }`; paths are relative to
 * `root` (default an in-memory folder). Pass `root` to place files next to real ones
 * (ONNX models on disk).
 */
export async function validateFiles(files: Record<string, string>, options: { root?: string; services?: AiMatrixLanguages } = {}): Promise<Validated> {
    const services = options.services ?? createAiMatrixServices(EmptyFileSystem);
    const root = options.root ?? MEMORY_ROOT;
    const factory = services.shared.workspace.LangiumDocumentFactory;
    const langiumDocuments = services.shared.workspace.LangiumDocuments;
    const documents = new Map<string, LangiumDocument>();
    for (const [file, text] of Object.entries(files)) {
        const document = factory.fromString(text, URI.file(`${root}/${file}`));
        langiumDocuments.addDocument(document);
        documents.set(file, document);
    }
    await services.shared.workspace.DocumentBuilder.build([...documents.values()], { validation: true });
    const first = Object.keys(files)[0];
    const diagnostics = (file: string) => documents.get(file)?.diagnostics ?? [];
    return {
        services,
        documents,
        diagnostics,
        codes: (file = first) => diagnostics(file).map(diagnosticCode),
        withCode: (code, file = first) => diagnostics(file).filter(d => diagnosticCode(d) === code)
    };
}

/** Validates one twin file. */
export function validateTwin(text: string): Promise<Validated> {
    return validateFiles({ 'main.twin': text });
}

/** Validates one agent file. */
export function validateAgent(text: string): Promise<Validated> {
    return validateFiles({ 'main.agent': text });
}

/** `file:line:col code message` lines, for readable failure output. */
export function describe(diagnostics: readonly Diagnostic[]): string[] {
    return diagnostics.map(d => `${d.range.start.line + 1}:${d.range.start.character + 1} ${diagnosticCode(d)} ${d.message}`);
}
