/**
 * Validation after a re-parse by top-level block (see `aimatrix-document-factory.ts` and
 * `aimatrix-linker.ts`) checks again only the blocks whose diagnostics can have changed.
 *
 * The diagnostics of the checks on the nodes of each top-level block are remembered
 * with the line the block started on. A block that the splice kept and in which every
 * reference resolved, before and after the change, inside the block (the linker's
 * settled blocks) depends on nothing but its own text: its remembered diagnostics are
 * reused, moved by the lines the block moved (a kept block after the change starts on a
 * later line, so columns stay). Every other block is checked again: re-parsed blocks,
 * blocks with a reference to another block, another document or nothing (an experiment
 * reads its twin, a system its observed twin), and blocks whose checks read files (a
 * model's ONNX file) or reported outside the block. The whole-file checks (duplicate
 * top-level names, imports), the syntax and linking errors run on every build.
 */
import { AstUtils, interruptAndCheck, type AstNode, type LangiumDocument, type ValidationAcceptor, type ValidationOptions } from 'langium';
import type { LangiumServices } from 'langium/lsp';
import { CancellationToken, type Diagnostic } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { AiMatrixDocumentValidator } from './aimatrix-document-validator.js';
import { AiMatrixLinker } from './aimatrix-linker.js';

interface BlockDiagnostics {
    /** The validation categories they were computed for. */
    categories: string;
    /** The line the block started on. */
    line: number;
    diagnostics: Diagnostic[];
}

export class AiMatrixBlockValidator extends AiMatrixDocumentValidator {
    private readonly linker: AiMatrixLinker | undefined;
    /** Per top-level block (kept blocks are the same objects): its nodes' diagnostics, when they can be reused. */
    private readonly remembered = new WeakMap<AstNode, BlockDiagnostics>();

    constructor(services: LangiumServices) {
        super(services);
        const linker = services.references.Linker;
        this.linker = linker instanceof AiMatrixLinker ? linker : undefined;
    }

    protected override async validateAst(rootNode: AstNode, options: ValidationOptions, cancelToken = CancellationToken.None): Promise<Diagnostic[]> {
        const document = (rootNode as { $document?: LangiumDocument }).$document;
        const settled = document ? this.linker?.takeSettledBlocks(document) : undefined;
        const categories = (options.categories ?? []).join(',');
        const items: Diagnostic[] = [];
        const acceptor: ValidationAcceptor = (severity, message, info) => {
            items.push(this.toDiagnostic(severity, message, info));
        };
        await this.validateAstBefore(rootNode, options, acceptor, cancelToken);
        // The same order as validating the whole tree: the root, then each block's nodes in order.
        await this.checkNode(rootNode, options, acceptor, cancelToken);
        for (const block of AstUtils.streamContents(rootNode)) {
            await interruptAndCheck(cancelToken);
            const start = block.$cstNode?.range.start.line;
            const before = settled?.has(block) ? this.remembered.get(block) : undefined;
            if (before && start !== undefined && before.categories === categories) {
                const delta = start - before.line;
                for (const d of before.diagnostics) items.push(delta === 0 ? d : moved(d, delta));
                continue;
            }
            const first = items.length;
            let reusable = start !== undefined;
            for (const node of AstUtils.streamAst(block)) {
                if (ast.isModel(node)) reusable = false;
                await this.checkNode(node, options, acceptor, cancelToken);
            }
            const diagnostics = items.slice(first);
            const range = block.$cstNode?.range;
            if (reusable && range && diagnostics.every(d => d.relatedInformation === undefined && d.range.start.line >= range.start.line && d.range.end.line <= range.end.line)) {
                this.remembered.set(block, { categories, line: range.start.line, diagnostics });
            } else {
                this.remembered.delete(block);
            }
        }
        await this.validateAstAfter(rootNode, options, acceptor, cancelToken);
        return items;
    }

    private async checkNode(node: AstNode, options: ValidationOptions, acceptor: ValidationAcceptor, cancelToken: CancellationToken): Promise<void> {
        for (const check of this.validationRegistry.getChecks(node.$type, options.categories)) {
            await check(node, acceptor, cancelToken);
        }
    }
}

/** A diagnostic moved down (or up) by `delta` lines. */
function moved(d: Diagnostic, delta: number): Diagnostic {
    const { start, end } = d.range;
    return { ...d, range: { start: { line: start.line + delta, character: start.character }, end: { line: end.line + delta, character: end.character } } };
}
