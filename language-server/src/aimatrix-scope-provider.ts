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
    AstUtils, DefaultScopeProvider, EMPTY_SCOPE, UriUtils, type AstNode, type AstNodeDescription,
    type LangiumDocument, type ReferenceInfo, type Scope, type Stream
} from 'langium';
import { URI } from 'vscode-uri';
import * as ast from '../generated/ast.js';
import { unquote } from './units.js';

export class AiMatrixScopeProvider extends DefaultScopeProvider {

    override getScope(context: ReferenceInfo): Scope {
        const container = context.container;
        if ((ast.isOverride(container) || ast.isSweep(container)) && context.property === 'param') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            return twin ? this.createScopeForNodes(twin.members.filter(ast.isParam)) : EMPTY_SCOPE;
        }
        if (ast.isReport(container) && context.property === 'kpis') {
            const twin = AstUtils.getContainerOfType(container, ast.isExperiment)?.twin?.ref;
            return twin ? this.createScopeForNodes(twin.members.filter(ast.isKpi)) : EMPTY_SCOPE;
        }
        if (ast.isScore(container)) {
            const decision = AstUtils.getContainerOfType(container, ast.isDecision);
            return decision ? this.createScopeForNodes(decision.members.filter(ast.isCriterion)) : EMPTY_SCOPE;
        }

        const referenceType = this.reflection.getReferenceType(context);
        const scopes: Array<Stream<AstNodeDescription>> = [];
        const localSymbols = AstUtils.getDocument(container).localSymbols;
        let current: AstNode | undefined = container;
        while (current) {
            if (localSymbols?.has(current)) {
                scopes.push(localSymbols.getStream(current).filter(d => this.reflection.isSubtype(d.type, referenceType)));
            }
            if (ast.isProcess(current) && !(container === current && context.property === 'entity')) {
                const attributes = current.entity?.ref?.attributes ?? [];
                scopes.push(this.descriptionsOf(attributes, referenceType));
            }
            if (ast.isSystem(current) && !(container === current && context.property === 'twin')) {
                const members = current.twin?.ref?.members ?? [];
                scopes.push(this.descriptionsOf(members, referenceType));
            }
            current = current.$container;
        }
        let result = this.getGlobalScope(referenceType, context);
        for (let i = scopes.length - 1; i >= 0; i--) {
            result = this.createScope(scopes[i], result);
        }
        return result;
    }

    private descriptionsOf(nodes: readonly AstNode[], referenceType: string): Stream<AstNodeDescription> {
        const descriptions: AstNodeDescription[] = [];
        for (const node of nodes) {
            if (!this.reflection.isSubtype(node.$type, referenceType)) continue;
            const name = this.nameProvider.getName(node);
            if (name) descriptions.push(this.descriptions.createDescription(node, name));
        }
        return this.createScope(descriptions).getAllElements();
    }

    protected override getGlobalScope(referenceType: string, context: ReferenceInfo): Scope {
        const document = AstUtils.getDocument(context.container);
        const visible = new Set([document.uri.toString(), ...importedUris(document).map(u => u.toString())]);
        return this.createScope(this.indexManager.allElements(referenceType, visible));
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
