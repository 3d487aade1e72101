/**
 * Scoping of the two languages.
 *
 * - Local names are visible in the block that declares them (Langium's default).
 * - A process also sees the attributes of the entity it is `for`.
 * - An agent system that `observes` a twin sees the twin's members.
 * - An experiment's `set`, `sweep` and `report` see only the members of its twin.
 * - Across files, a name is visible only through `import`: the global scope of a
 *   document is its own exports and those of the documents it imports.
 */
import {
    AstUtils, DefaultScopeProvider, DocumentState, EMPTY_SCOPE, UriUtils, WorkspaceCache, stream, type AstNode,
    type AstNodeDescription, type LangiumDocument, type ReferenceInfo, type Scope, type Stream
} from 'langium';
import type { LangiumServices } from 'langium/lsp';
import { URI } from 'vscode-uri';
import * as ast from '../generated/ast.js';
import { unquote } from './units.js';

/**
 * A scope with the semantics of Langium's `StreamScope` (the first element of a name
 * wins, `getElements` gives all of them, `getAllElements` keeps the order) that finds a
 * name in constant time.
 */
export class FirstWinsMapScope implements Scope {
    private readonly byName = new Map<string, AstNodeDescription[]>();

    constructor(private readonly elements: readonly AstNodeDescription[], private readonly outerScope?: Scope) {
        for (const element of elements) {
            const same = this.byName.get(element.name);
            if (same) same.push(element);
            else this.byName.set(element.name, [element]);
        }
    }

    getElement(name: string): AstNodeDescription | undefined {
        return this.byName.get(name)?.[0] ?? this.outerScope?.getElement(name);
    }

    getElements(name: string): Stream<AstNodeDescription> {
        const local = stream(this.byName.get(name) ?? []);
        return this.outerScope ? local.concat(this.outerScope.getElements(name)) : local;
    }

    getAllElements(): Stream<AstNodeDescription> {
        const local = stream(this.elements);
        return this.outerScope ? local.concat(this.outerScope.getAllElements()) : local;
    }
}

/** A reference type, `own:` before it when the node's own entity attributes or twin members are left out. */
type ScopeKey = string;

export class AiMatrixScopeProvider extends DefaultScopeProvider {

    /**
     * Scopes by node and reference type, built once per build: the names a node's level
     * adds, on top of its container's scope. Everything here depends on the ASTs of this
     * and other documents (a process sees an entity's attributes, a system a twin's
     * members, the global scope every imported file's exports), so the cache is emptied
     * on every update and whenever the index changes.
     */
    private readonly scopes: WorkspaceCache<AstNode, Map<ScopeKey, Scope>>;
    private readonly globals: WorkspaceCache<LangiumDocument, Map<string, Scope>>;

    constructor(services: LangiumServices) {
        super(services);
        this.scopes = new WorkspaceCache(services.shared, DocumentState.IndexedContent);
        this.globals = new WorkspaceCache(services.shared, DocumentState.IndexedContent);
        services.shared.workspace.DocumentBuilder.onUpdate(() => {
            this.scopes.clear();
            this.globals.clear();
        });
    }

    override getScope(context: ReferenceInfo): Scope {
        const container = context.container;
        if ((ast.isOverride(container) || ast.isSweep(container)) && context.property === 'param') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            return twin ? this.cached(twin, 'members:Param', () => this.scopeOfNodes(twin.members.filter(ast.isParam))) : EMPTY_SCOPE;
        }
        if (ast.isReport(container) && context.property === 'kpis') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            return twin ? this.cached(twin, 'members:Kpi', () => this.scopeOfNodes(twin.members.filter(ast.isKpi))) : EMPTY_SCOPE;
        }
        if (ast.isScore(container)) {
            const decision = AstUtils.getContainerOfType(container, ast.isDecision);
            return decision ? this.cached(decision, 'members:Criterion', () => this.scopeOfNodes(decision.members.filter(ast.isCriterion))) : EMPTY_SCOPE;
        }
        const referenceType = this.reflection.getReferenceType(context);
        // A process's own `entity` and a system's own `twin` are resolved without the names they bring.
        const skipOwn = (ast.isProcess(container) && context.property === 'entity') || (ast.isSystem(container) && context.property === 'twin');
        return this.scopeFrom(container, referenceType, skipOwn);
    }

    /**
     * Innermost first: the node's local symbols, then (for a process) its entity's
     * attributes or (for a system) its twin's members, then the same for its container,
     * and so on; last the global scope.
     */
    private scopeFrom(node: AstNode, referenceType: string, skipOwn: boolean): Scope {
        return this.cached(node, `${skipOwn ? 'own:' : ''}${referenceType}`, () => {
            let outer = node.$container
                ? this.scopeFrom(node.$container, referenceType, false)
                : this.globalScopeOf(AstUtils.getDocument(node), referenceType);
            if (!skipOwn) {
                if (ast.isProcess(node)) outer = this.layer(this.descriptionsOf(node.entity?.ref?.attributes ?? [], referenceType), outer);
                if (ast.isSystem(node)) outer = this.layer(this.descriptionsOf(node.twin?.ref?.members ?? [], referenceType), outer);
            }
            const local = AstUtils.getDocument(node).localSymbols;
            if (local?.has(node)) {
                outer = this.layer(local.getStream(node).filter(d => this.reflection.isSubtype(d.type, referenceType)).toArray(), outer);
            }
            return outer;
        });
    }

    private layer(elements: AstNodeDescription[], outer: Scope): Scope {
        return elements.length === 0 ? outer : new FirstWinsMapScope(elements, outer);
    }

    private cached(node: AstNode, key: ScopeKey, create: () => Scope): Scope {
        let byKey = this.scopes.get(node);
        if (!byKey) {
            byKey = new Map();
            this.scopes.set(node, byKey);
        }
        let scope = byKey.get(key);
        if (!scope) {
            scope = create();
            byKey.set(key, scope);
        }
        return scope;
    }

    /** Descriptions of the named nodes, only those of `referenceType` when one is given. */
    private descriptionsOf(nodes: readonly AstNode[], referenceType?: string): AstNodeDescription[] {
        const descriptions: AstNodeDescription[] = [];
        for (const node of nodes) {
            if (referenceType !== undefined && !this.reflection.isSubtype(node.$type, referenceType)) continue;
            const name = this.nameProvider.getName(node);
            if (name) descriptions.push(this.descriptions.createDescription(node, name));
        }
        return descriptions;
    }

    private scopeOfNodes(nodes: readonly AstNode[]): Scope {
        return new FirstWinsMapScope(this.descriptionsOf(nodes));
    }

    private globalScopeOf(document: LangiumDocument, referenceType: string): Scope {
        let byType = this.globals.get(document);
        if (!byType) {
            byType = new Map();
            this.globals.set(document, byType);
        }
        let scope = byType.get(referenceType);
        if (!scope) {
            const visible = new Set([document.uri.toString(), ...importedUris(document).map(u => u.toString())]);
            scope = new FirstWinsMapScope(this.indexManager.allElements(referenceType, visible).toArray());
            byType.set(referenceType, scope);
        }
        return scope;
    }

    protected override getGlobalScope(referenceType: string, context: ReferenceInfo): Scope {
        return this.globalScopeOf(AstUtils.getDocument(context.container), referenceType);
    }
}

/** The URIs a document imports, resolved against its own folder. */
export function importedUris(document: LangiumDocument): URI[] {
    const root = document.parseResult.value;
    const imports = (root as Partial<ast.TwinFile | ast.AgentFile>).imports ?? [];
    return imports.filter(i => i.path !== undefined).map(i => resolveImport(document.uri, i.path));
}

export function resolveImport(from: URI, path: string): URI {
    return UriUtils.resolvePath(UriUtils.dirname(from), unquote(path));
}
