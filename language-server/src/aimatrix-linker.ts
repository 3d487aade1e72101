/**
 * Linking after a re-parse by top-level block (see `aimatrix-document-factory.ts`)
 * relinks only what can have changed.
 *
 * Langium unlinks every reference of a changed document and resolves them all again.
 * When the document factory spliced the document, the top-level blocks it kept are the
 * same AST objects with the same references. A reference in a kept block that resolved
 * to a node of the same block keeps its target: the block's text is unchanged, and the
 * scopes put the names of the blocks that enclose a reference before everything else
 * (a process's entity and its attributes are declared in its own twin; a system's
 * observed twin comes after the system's own names), so nothing outside the block can
 * shadow it (the block itself is named at the top level, where a block before it could
 * take its name: a reference to it is resolved again). Every other reference is resolved
 * again: those in re-parsed blocks, those that resolved to another block or another
 * document, and those that did not resolve.
 */
import {
    AstUtils, DefaultLinker, interruptAndCheck, isAstNode,
    type AstNode, type AstNodeDescription, type AstNodeDescriptionProvider, type LangiumDocument, type Reference, type ReferenceInfo
} from 'langium';
import type { LangiumServices } from 'langium/lsp';
import { CancellationToken } from 'vscode-languageserver';
import { AiMatrixDocumentFactory } from './aimatrix-document-factory.js';

/** The writable internals of Langium's references (`linker.js`, `buildReference`). */
/** A block's references and the place of the block when they were last linked. */
interface BlockReferences {
    references: ReferenceInfo[];
    place: string;
}

/** Where a block is: its offset, line and index (what a description's lazy path and segments are computed from). */
function placeOf(block: AstNode): string {
    const cst = block.$cstNode;
    return cst ? `${cst.offset}:${cst.range.start.line}:${block.$containerIndex ?? -1}` : '';
}

interface MutableReference extends Reference {
    _ref?: unknown;
    _nodeDescription?: AstNodeDescription;
}

export class AiMatrixLinker extends DefaultLinker {
    private readonly descriptions: AstNodeDescriptionProvider;
    private readonly factory: () => AiMatrixDocumentFactory | undefined;
    /** The references of each top-level block, in AST order (blocks are kept as the same objects), and where the block was. */
    private readonly blockReferences = new WeakMap<AstNode, BlockReferences>();
    /** What each reference of a document resolved to before it was last unlinked. */
    private readonly previous = new WeakMap<LangiumDocument, Map<Reference, AstNodeDescription>>();
    /** Per document, the kept blocks whose every reference kept its target in the last link (see `takeSettledBlocks`). */
    private readonly settled = new WeakMap<LangiumDocument, Set<AstNode>>();

    constructor(services: LangiumServices) {
        super(services);
        this.descriptions = services.workspace.AstNodeDescriptionProvider;
        this.factory = () => {
            const factory = services.shared.workspace.LangiumDocumentFactory;
            return factory instanceof AiMatrixDocumentFactory ? factory : undefined;
        };
    }

    override unlink(document: LangiumDocument): void {
        const resolved = new Map<Reference, AstNodeDescription>();
        for (const ref of document.references as MutableReference[]) {
            if (isAstNode(ref._ref) && ref._nodeDescription) resolved.set(ref, ref._nodeDescription);
        }
        this.previous.set(document, resolved);
        this.factory()?.forgetKeptElements(document);
        this.settled.delete(document);
        super.unlink(document);
    }

    /**
     * The blocks kept by the last splice of the document in which every reference
     * resolved, before and after it, to a node of the same block: all they depend on is
     * their own text (where in-block names resolve is a property of the block alone).
     * Taken once, by the validator, after the link.
     */
    takeSettledBlocks(document: LangiumDocument): ReadonlySet<AstNode> | undefined {
        const settled = this.settled.get(document);
        this.settled.delete(document);
        return settled;
    }

    override async link(document: LangiumDocument, cancelToken = CancellationToken.None): Promise<void> {
        const kept = this.factory()?.takeKeptElements(document);
        const previous = this.previous.get(document);
        this.previous.delete(document);
        const root = document.parseResult.value;
        const settled = new Set<AstNode>();
        this.settled.set(document, settled);
        for (const refInfo of AstUtils.streamReferences(root)) this.doLink(refInfo, document);
        for (const block of AstUtils.streamContents(root)) {
            await interruptAndCheck(cancelToken);
            const known = kept?.has(block) ? this.blockReferences.get(block) : undefined;
            if (known && previous) {
                const place = placeOf(block);
                const moved = place !== known.place;
                known.place = place;
                let all = true;
                for (const refInfo of known.references) if (!this.relink(refInfo, block, moved, previous, document)) all = false;
                if (all) settled.add(block);
                continue;
            }
            const references: ReferenceInfo[] = [];
            for (const node of AstUtils.streamAst(block)) {
                for (const refInfo of AstUtils.streamReferences(node)) {
                    references.push(refInfo);
                    this.doLink(refInfo, document);
                }
            }
            this.blockReferences.set(block, { references, place: placeOf(block) });
        }
    }

    /** Keeps the target of a reference of a kept block that resolved inside that block (true); links any other. */
    private relink(refInfo: ReferenceInfo, block: AstNode, moved: boolean, previous: Map<Reference, AstNodeDescription>, document: LangiumDocument): boolean {
        const ref = refInfo.reference as MutableReference;
        const description = previous.get(ref);
        const target = description?.node;
        if (description && target && target !== block && ref._ref === undefined && topLevelBlock(target) === block) {
            ref._ref = target;
            // The old description may hold the target's path and range from before the splice: a fresh one if the block moved.
            ref._nodeDescription = moved ? this.descriptions.createDescription(target, description.name, document) : description;
            document.references.push(ref);
            return true;
        }
        this.doLink(refInfo, document);
        return false;
    }
}

/** The top-level element (child of the root) that contains `node`, or undefined for the root. */
function topLevelBlock(node: AstNode): AstNode | undefined {
    let current = node;
    while (current.$container?.$container) current = current.$container;
    return current.$container ? current : undefined;
}
