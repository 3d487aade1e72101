/**
 * Re-parses a changed document by top-level block. When the text of a large document
 * changes, the top-level elements (imports, twins, experiments, systems) that end on a
 * line before the change and those that start on a line after it are kept; only the
 * text between them is parsed again (with the same entry rule: each top-level element is
 * a valid file on its own) and spliced in, the kept elements after the change shifted.
 *
 * Anything unusual falls back to a full parse: a small document, a syntax error anywhere
 * outside the re-parsed text before the change or in it after, a change that reaches the
 * imports, a root that is not a file of twins or systems.
 */
import {
    DefaultLangiumDocumentFactory, DocumentState, isRootCstNode, type AstNode, type CstNode, type LangiumDocument, type ParseResult
} from 'langium';
import type { LangiumSharedServices } from 'langium/lsp';
import type { CancellationToken } from 'vscode-languageserver';
import type { Range } from 'vscode-languageserver-types';

/** The writable internals of Langium's CST node classes (`cst-node-builder.js`). */
interface MutableCstNode {
    _offset?: number;
    _range?: Range;
    _rangeCache?: Range;
    _text?: string;
    root?: CstNode;
    content?: MutableCstNode[] & { splice(start: number, count: number, ...items: MutableCstNode[]): MutableCstNode[] };
    offset: number;
    end: number;
    range: Range;
    hidden: boolean;
}

type GenericNode = AstNode & Record<string, unknown>;

function countLines(text: string, from: number, to: number): number {
    let n = 0;
    for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
    return n;
}

/** Calls `visit` on every CST node under `node` (itself included). */
function forEachCstNode(node: MutableCstNode, visit: (node: MutableCstNode) => void): void {
    const stack: MutableCstNode[] = [node];
    while (stack.length > 0) {
        const current = stack.pop()!;
        visit(current);
        const content = current.content;
        if (content) for (let i = 0; i < content.length; i++) stack.push(content[i]);
    }
}

export class AiMatrixDocumentFactory extends DefaultLangiumDocumentFactory {
    /** Documents with fewer lines are parsed whole (fast enough; and the splice has nothing to save). */
    minLines = 2000;
    /** How the last update parsed (for tests): 'incremental', 'full' or 'unchanged'. */
    lastUpdate: 'incremental' | 'full' | 'unchanged' = 'unchanged';
    /** The top-level elements the last splice of a document kept (same AST objects), until the linker takes them. */
    private readonly kept = new WeakMap<LangiumDocument, ReadonlySet<AstNode>>();

    constructor(services: LangiumSharedServices) {
        super(services);
    }

    /**
     * The top-level elements that the document's last update kept from the previous parse,
     * or undefined when it was not a splice. Taken once: the linker asks after each update.
     */
    takeKeptElements(document: LangiumDocument): ReadonlySet<AstNode> | undefined {
        const kept = this.kept.get(document);
        this.kept.delete(document);
        return kept;
    }

    /** Forgets what the last splice kept (the document is being unlinked for another reason). */
    forgetKeptElements(document: LangiumDocument): void {
        this.kept.delete(document);
    }

    override async update<T extends AstNode = AstNode>(document: LangiumDocument<T>, cancellationToken: CancellationToken): Promise<LangiumDocument<T>> {
        const oldText = document.parseResult.value.$cstNode?.root.fullText;
        const textDocument = this.textDocuments?.get(document.uri.toString());
        const text = textDocument ? textDocument.getText() : await this.fileSystemProvider.readFile(document.uri);
        if (textDocument) {
            Object.defineProperty(document, 'textDocument', { value: textDocument });
        } else {
            const textDocumentGetter = this.createTextDocumentGetter(document.uri, text);
            Object.defineProperty(document, 'textDocument', { get: textDocumentGetter });
        }
        this.kept.delete(document);
        if (oldText !== text) {
            const spliced = oldText === undefined ? undefined : this.reparseBlocks(document, oldText, text);
            if (spliced) {
                document.parseResult = spliced as ParseResult<T>;
                this.lastUpdate = 'incremental';
            } else {
                document.parseResult = await this.parseAsync(document.uri, text, cancellationToken);
                this.lastUpdate = 'full';
            }
            (document.parseResult.value as { $document?: LangiumDocument }).$document = document;
        } else {
            this.lastUpdate = 'unchanged';
        }
        document.state = DocumentState.Parsed;
        return document;
    }

    /** The document's parse result updated in place for `text`, or undefined to parse it whole. */
    protected reparseBlocks(document: LangiumDocument, oldText: string, text: string): ParseResult | undefined {
        const root = document.parseResult.value as GenericNode;
        if (!isRootCstNode(root.$cstNode)) return undefined;
        const rootCst = root.$cstNode as unknown as MutableCstNode;
        if (!rootCst.content) return undefined;
        if (countLines(text, 0, text.length) < this.minLines) return undefined;
        const property = root.$type === 'TwinFile' ? 'elements' : root.$type === 'AgentFile' ? 'systems' : undefined;
        if (!property) return undefined;
        const imports = (root.imports ?? []) as AstNode[];
        const elements = (root[property] ?? []) as AstNode[];
        if (imports.some(i => !i.$cstNode) || elements.some(e => !e.$cstNode)) return undefined;

        // The changed region: [p, oldText.length - s) in the old text, [p, text.length - s) in the new.
        const max = Math.min(oldText.length, text.length);
        const CHUNK = 512;
        let p = 0;
        while (p + CHUNK <= max && oldText.substring(p, p + CHUNK) === text.substring(p, p + CHUNK)) p += CHUNK;
        while (p < max && oldText.charCodeAt(p) === text.charCodeAt(p)) p++;
        let s = 0;
        while (s + CHUNK <= max - p && oldText.substring(oldText.length - s - CHUNK, oldText.length - s) === text.substring(text.length - s - CHUNK, text.length - s)) s += CHUNK;
        while (s < max - p && oldText.charCodeAt(oldText.length - 1 - s) === text.charCodeAt(text.length - 1 - s)) s++;
        const startLine = countLines(oldText, 0, p);
        const oldEndLine = startLine + countLines(oldText, p, oldText.length - s);
        const delta = text.length - oldText.length;
        const lineDelta = countLines(text, p, text.length - s) - countLines(oldText, p, oldText.length - s);

        // Kept: elements that end on a line before the change, and those that start on a line after it.
        let before = 0;
        while (before < elements.length && elements[before].$cstNode!.range.end.line < startLine) before++;
        let after = elements.length;
        while (after > before && elements[after - 1].$cstNode!.range.start.line > oldEndLine) after--;
        if (imports.length > 0 && (before === 0 || imports.some(i => i.$cstNode!.range.end.line >= startLine))) return undefined;
        if (before === 0 && after === elements.length) return undefined;
        const mStart = before > 0 ? elements[before - 1].$cstNode!.end : 0;
        const oldMEnd = after < elements.length ? elements[after].$cstNode!.offset : oldText.length;
        const mEnd = oldMEnd + delta;
        if (mStart > p || oldMEnd < oldText.length - s || mEnd < mStart) return undefined;

        // Old syntax errors must all lie in the re-parsed text.
        const old = document.parseResult;
        if ((old.lexerReport?.diagnostics.length ?? 0) > 0) return undefined;
        if (old.lexerErrors.some(e => e.offset < mStart || e.offset >= oldMEnd)) return undefined;
        if (old.parserErrors.some(e => !(e.token.startOffset >= mStart && e.token.startOffset < oldMEnd))) return undefined;

        const services = this.serviceRegistry.getServices(document.uri);
        const middle = services.parser.LangiumParser.parse(text.substring(mStart, mEnd));
        if (middle.lexerErrors.length > 0 || middle.parserErrors.length > 0 || (middle.lexerReport?.diagnostics.length ?? 0) > 0) return undefined;
        const middleRoot = middle.value as GenericNode;
        const middleCst = middleRoot.$cstNode as unknown as MutableCstNode | undefined;
        if (middleRoot.$type !== root.$type || ((middleRoot.imports ?? []) as AstNode[]).length > 0 || !middleCst?.content) return undefined;

        // Root CST content: drop what lies in the old middle, put the middle's in its place.
        const content = rootCst.content;
        let i0 = 0;
        while (i0 < content.length && content[i0].offset < mStart) i0++;
        let i1 = i0;
        while (i1 < content.length && content[i1].offset < oldMEnd) i1++;
        if (content.slice(0, i0).some(n => n.end > mStart)) return undefined;

        // Shift the kept nodes after the change (they start on a later line: columns stay).
        // Typing within a line (no line added or removed) moves offsets only: ranges stay as they are.
        for (let i = i1; i < content.length; i++) {
            forEachCstNode(content[i], node => {
                if (node._offset !== undefined && node._range) {
                    node._offset += delta;
                    if (lineDelta !== 0) {
                        const r = node._range;
                        node._range = {
                            start: { character: r.start.character, line: r.start.line + lineDelta },
                            end: { character: r.end.character, line: r.end.line + lineDelta }
                        };
                    }
                }
                if (lineDelta !== 0) node._rangeCache = undefined;
            });
        }
        // Place the middle's nodes at their offset in the whole text (key order as Langium's tokenToRange).
        const startCol = mStart - (text.lastIndexOf('\n', mStart - 1) + 1);
        const middleLine = countLines(text, 0, mStart);
        const place = (pos: { line: number; character: number }): { line: number; character: number } =>
            ({ character: pos.line === 0 ? pos.character + startCol : pos.character, line: pos.line + middleLine });
        const middleItems = [...middleCst.content];
        for (const item of middleItems) {
            forEachCstNode(item, node => {
                if (node._offset !== undefined && node._range) {
                    node._offset += mStart;
                    node._range = { start: place(node._range.start), end: place(node._range.end) };
                }
                node.root = rootCst as unknown as CstNode;
                node._rangeCache = undefined;
            });
        }
        content.splice(i0, i1 - i0, ...middleItems);
        rootCst._text = text;
        rootCst._rangeCache = undefined;

        // The AST: kept elements before, the middle's, kept elements after.
        const spliced = [...elements.slice(0, before), ...((middleRoot[property] ?? []) as AstNode[]), ...elements.slice(after)];
        spliced.forEach((element, index) => {
            const mutable = element as { $container?: AstNode; $containerProperty?: string; $containerIndex?: number };
            mutable.$container = root;
            mutable.$containerProperty = property;
            mutable.$containerIndex = index;
        });
        root[property] = spliced;
        this.kept.set(document, new Set([...elements.slice(0, before), ...elements.slice(after)]));
        return { value: root, parserErrors: [], lexerErrors: [], lexerReport: middle.lexerReport };
    }
}
