/**
 * Gives every diagnostic a stable code of ours, including Langium's own lexing,
 * parsing and linking errors, so that editors, the CLI and quick fixes see one scheme.
 *
 * Linking errors get helpful messages: the kind of thing that was expected, the
 * nearest name in scope (`Did you mean 'Teller'?`), or the file that declares the name
 * when that file is not imported. An unknown parameter of an experiment and an
 * unknown channel get their own codes.
 */
import {
    AstUtils, DefaultDocumentValidator, DocumentValidator, type AstReflection, type IndexManager, type LangiumCoreServices,
    type LangiumDocument, type ReferenceInfo, type ScopeProvider, type ValidationOptions
} from 'langium';
import * as path from 'node:path';
import type { CancellationToken, Diagnostic } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { IssueCodes, type IssueCode, type IssueData } from './issue-codes.js';
import { importedUris } from './aimatrix-scope-provider.js';
import { didYouMean, kindName, nearestName } from './validation-util.js';

const LANGIUM_CODES: Record<string, string> = {
    [DocumentValidator.LexingError]: IssueCodes.LexingError,
    [DocumentValidator.ParsingError]: IssueCodes.SyntaxError,
    [DocumentValidator.LinkingError]: IssueCodes.UnresolvedReference
};

/** Beyond this many linking errors in one document, messages skip the (costlier) suggestions. */
const MAX_SUGGESTIONS = 100;

/** How the expected kind of a reference reads in a message. */
const REFERENCE_KINDS: Record<string, string> = {
    Referable: 'name',
    FlowEnd: 'stock',
    Assignable: 'variable',
    MessageParam: 'message'
};

export class AiMatrixDocumentValidator extends DefaultDocumentValidator {
    protected readonly scopeProvider: ScopeProvider;
    protected readonly reflection: AstReflection;
    protected readonly indexManager: IndexManager;

    constructor(services: LangiumCoreServices) {
        super(services);
        this.scopeProvider = services.references.ScopeProvider;
        this.reflection = services.shared.AstReflection;
        this.indexManager = services.shared.workspace.IndexManager;
    }

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

    protected override processLinkingErrors(document: LangiumDocument, diagnostics: Diagnostic[], _options: ValidationOptions): void {
        let count = 0;
        for (const reference of document.references) {
            const linkingError = reference.error;
            if (!linkingError) continue;
            const info = linkingError.info;
            const refText = info.reference.$refText;
            const { code, message, data } = count++ < MAX_SUGGESTIONS
                ? this.describeUnresolved(document, info, refText)
                : { code: IssueCodes.UnresolvedReference, message: linkingError.message, data: { code: IssueCodes.UnresolvedReference } as IssueData };
            diagnostics.push(this.toDiagnostic('error', message, {
                node: info.container,
                range: reference.$refNode?.range,
                property: info.property,
                index: info.index,
                code,
                data: { ...data, refText, containerType: info.container.$type, property: info.property }
            }));
        }
    }

    protected describeUnresolved(document: LangiumDocument, info: ReferenceInfo, refText: string): { code: IssueCode; message: string; data: IssueData } {
        const container = info.container;
        if ((ast.isOverride(container) || ast.isSweep(container)) && info.property === 'param') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            const code = IssueCodes.UnknownParameter;
            if (!twin) return { code, message: `Unknown parameter '${refText}': the experiment's twin is not known.`, data: { code } };
            const suggestion = nearestName(refText, twin.members.filter(ast.isParam).map(p => p.name));
            return { code, message: `${twin.name} has no parameter '${refText}'.${didYouMean(suggestion)}`, data: { code, suggestion } };
        }
        if (ast.isReport(container) && info.property === 'kpis') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            const code = IssueCodes.UnresolvedReference;
            const suggestion = twin ? nearestName(refText, twin.members.filter(ast.isKpi).map(k => k.name)) : undefined;
            const message = twin ? `${twin.name} has no KPI '${refText}'.${didYouMean(suggestion)}` : `Unknown KPI '${refText}'.`;
            return { code, message, data: { code, suggestion } };
        }
        const isChannel = (ast.isSendStmt(container) || ast.isMessageBehaviour(container)) && info.property === 'channel';
        const code = isChannel ? IssueCodes.UnknownChannel : IssueCodes.UnresolvedReference;
        const referenceType = this.reflection.getReferenceType(info);
        const kind = REFERENCE_KINDS[referenceType] ?? kindName(referenceType);

        let suggestion: string | undefined;
        try {
            const names = this.scopeProvider.getScope(info).getAllElements().map(d => d.name);
            suggestion = nearestName(refText, names);
        } catch {
            suggestion = undefined;
        }
        if (suggestion !== undefined) {
            return { code, message: `Unknown ${kind} '${refText}'.${didYouMean(suggestion)}`, data: { code, suggestion } };
        }
        const importPath = this.findInUnimportedFile(document, referenceType, refText);
        if (importPath !== undefined) {
            return {
                code,
                message: `Unknown ${kind} '${refText}': it is declared in '${importPath}', which this file does not import.`,
                data: { code, importPath }
            };
        }
        return { code, message: `Unknown ${kind} '${refText}'.`, data: { code } };
    }

    /** The relative import path of another workspace file that exports `name`, when this file does not import it. */
    protected findInUnimportedFile(document: LangiumDocument, referenceType: string, name: string): string | undefined {
        const own = document.uri.toString();
        const imported = new Set(importedUris(document).map(u => u.toString()));
        const match = this.indexManager.allElements(referenceType)
            .find(d => d.name === name && d.documentUri.toString() !== own && !imported.has(d.documentUri.toString()));
        if (!match) return undefined;
        const relative = path.posix.relative(path.posix.dirname(document.uri.path), match.documentUri.path);
        return relative.startsWith('.') ? relative : `./${relative}`;
    }
}

/** The stable code of a diagnostic, whichever part of the pipeline raised it. */
export function diagnosticCode(d: Diagnostic): string {
    if (typeof d.code === 'string') return d.code;
    const langiumCode = (d.data as { code?: string } | undefined)?.code;
    return (langiumCode && LANGIUM_CODES[langiumCode]) ?? langiumCode ?? 'unknown';
}
