/**
 * The language core without an editor: parse, link and validate a set of files.
 * The `aimatrix` CLI and the runtime use this; the language server uses the same services.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { LangiumDocument } from 'langium';
import { NodeFileSystem } from 'langium/node';
import { URI } from 'vscode-uri';
import type { Diagnostic } from 'vscode-languageserver';
import { createAiMatrixServices, type AiMatrixLanguages } from './aimatrix-module.js';
import { diagnosticCode } from './aimatrix-document-validator.js';
import { importedUris } from './aimatrix-scope-provider.js';
import { IssueCodes } from './issue-codes.js';

export { createAiMatrixServices } from './aimatrix-module.js';
export type { AiMatrixLanguages, AiMatrixServices } from './aimatrix-module.js';
export { IssueCodes, type IssueCode } from './issue-codes.js';
export * as ast from '../generated/ast.js';

export const SOURCE_EXTENSIONS = ['.twin', '.agent'] as const;

export type Severity = 'error' | 'warning' | 'info' | 'hint';

/** One diagnostic as the CLI prints it (1-based line and column). */
export interface CheckDiagnostic {
    file: string;
    line: number;
    column: number;
    endLine: number;
    endColumn: number;
    severity: Severity;
    code: string;
    message: string;
}

export interface CheckResult {
    /** The parsed and linked documents, in the order their files were found. */
    documents: LangiumDocument[];
    diagnostics: CheckDiagnostic[];
    errors: number;
    warnings: number;
    services: AiMatrixLanguages;
}

export interface CheckOptions {
    /** Paths are reported relative to this folder (default: the current folder). */
    cwd?: string;
    /** Reuse services (a long-lived process checking many times). */
    services?: AiMatrixLanguages;
}

const SKIPPED_FOLDERS = new Set(['node_modules', '.git', '.aimatrix', 'dist', 'out']);

/**
 * Checks files and folders (recursively, `.twin` and `.agent` files), together with
 * every file they import. A path that cannot be read is a diagnostic, not an exception.
 */
export async function checkPaths(paths: readonly string[], options: CheckOptions = {}): Promise<CheckResult> {
    const cwd = options.cwd ?? process.cwd();
    const services = options.services ?? createAiMatrixServices(NodeFileSystem);
    const diagnostics: CheckDiagnostic[] = [];
    const files: string[] = [];
    for (const p of paths) {
        await collectFiles(path.resolve(cwd, p), files, diagnostics, cwd);
    }

    const documents = services.shared.workspace.LangiumDocuments;
    const loaded = new Map<string, LangiumDocument>();
    const queue = files.map(f => URI.file(f));
    while (queue.length > 0) {
        const uri = queue.shift()!;
        if (loaded.has(uri.toString())) continue;
        let document: LangiumDocument;
        try {
            document = await documents.getOrCreateDocument(uri);
        } catch (error) {
            diagnostics.push(fileDiagnostic(uri.fsPath, cwd, error));
            continue;
        }
        loaded.set(uri.toString(), document);
        for (const imported of importedUris(document)) {
            if (!loaded.has(imported.toString()) && isSourceFile(imported.fsPath) && await isReadableFile(imported.fsPath)) {
                queue.push(imported);
            }
        }
    }
    const all = [...loaded.values()];
    await services.shared.workspace.DocumentBuilder.build(all, { validation: true });

    for (const document of all) {
        for (const d of document.diagnostics ?? []) {
            diagnostics.push(toCheckDiagnostic(document.uri.fsPath, cwd, d));
        }
    }
    diagnostics.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
    return {
        documents: all,
        diagnostics,
        errors: diagnostics.filter(d => d.severity === 'error').length,
        warnings: diagnostics.filter(d => d.severity === 'warning').length,
        services
    };
}

export function isSourceFile(file: string): boolean {
    return SOURCE_EXTENSIONS.some(ext => file.endsWith(ext));
}

async function isReadableFile(file: string): Promise<boolean> {
    try {
        return (await fs.stat(file)).isFile();
    } catch {
        return false;
    }
}

async function collectFiles(target: string, files: string[], diagnostics: CheckDiagnostic[], cwd: string): Promise<void> {
    let stat;
    try {
        stat = await fs.stat(target);
    } catch (error) {
        diagnostics.push(fileDiagnostic(target, cwd, error));
        return;
    }
    if (stat.isDirectory()) {
        let entries;
        try {
            entries = await fs.readdir(target, { withFileTypes: true });
        } catch (error) {
            diagnostics.push(fileDiagnostic(target, cwd, error));
            return;
        }
        entries.sort((a, b) => a.name.localeCompare(b.name));
        for (const entry of entries) {
            if (entry.isDirectory() && (SKIPPED_FOLDERS.has(entry.name) || entry.name.startsWith('.'))) continue;
            if (entry.isDirectory() || isSourceFile(entry.name)) {
                await collectFiles(path.join(target, entry.name), files, diagnostics, cwd);
            }
        }
    } else if (isSourceFile(target)) {
        try {
            await fs.access(target, fs.constants.R_OK);
            files.push(target);
        } catch (error) {
            diagnostics.push(fileDiagnostic(target, cwd, error));
        }
    } else {
        diagnostics.push({
            file: relative(target, cwd), line: 1, column: 1, endLine: 1, endColumn: 1, severity: 'error',
            code: IssueCodes.UnreadableFile,
            message: `not a twin or agent file (expected ${SOURCE_EXTENSIONS.join(' or ')})`
        });
    }
}

function fileDiagnostic(file: string, cwd: string, error: unknown): CheckDiagnostic {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file or folder'
        : code === 'EACCES' ? 'permission denied'
        : code === 'EISDIR' ? 'is a folder'
        : error instanceof Error ? error.message : String(error);
    return {
        file: relative(file, cwd), line: 1, column: 1, endLine: 1, endColumn: 1, severity: 'error',
        code: IssueCodes.UnreadableFile, message: `cannot read: ${reason}`
    };
}

function relative(file: string, cwd: string): string {
    const rel = path.relative(cwd, file);
    return rel === '' ? '.' : rel.startsWith('..') ? file : rel;
}

const SEVERITIES: Record<number, Severity> = { 1: 'error', 2: 'warning', 3: 'info', 4: 'hint' };

export function toCheckDiagnostic(file: string, cwd: string, d: Diagnostic): CheckDiagnostic {
    return {
        file: relative(file, cwd),
        line: d.range.start.line + 1,
        column: d.range.start.character + 1,
        endLine: d.range.end.line + 1,
        endColumn: d.range.end.character + 1,
        severity: SEVERITIES[d.severity ?? 1] ?? 'error',
        code: diagnosticCode(d),
        message: d.message
    };
}
