/**
 * Hover for both languages: the documentation of keywords and built-ins, and on a
 * declaration or a reference what the declaration is: a parameter's value with its
 * unit, the dimension of stocks, auxiliaries, flows and KPIs, a model's file and
 * tensors. Never throws: a half-typed file gives less, not an error.
 */
import { AstUtils, CstUtils, GrammarAST, GrammarUtils, type AstNode, type CstNode, type LangiumDocument, type MaybePromise } from 'langium';
import { AstNodeHoverProvider, type LangiumServices } from 'langium/lsp';
import type { Hover, HoverParams } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { builtinSignatures, findBuiltin, type Builtin } from './builtins.js';
import { findCallContext } from './call-context.js';
import { keywordDoc } from './keyword-docs.js';
import {
    declarationDim, describeDim, evaluateConstant, formatQuantity, inferDim, isRate, isTime, unitSpecText, type Dim
} from './units.js';

function markdown(value: string): Hover {
    return { contents: { kind: 'markdown', value } };
}

function contains(node: CstNode | undefined, offset: number): boolean {
    return node !== undefined && node.offset <= offset && offset < node.end;
}

/** The source text of a node, on one line. */
function textOf(node: AstNode | undefined): string {
    return node?.$cstNode?.text.replace(/\s+/g, ' ').trim() ?? '?';
}

export function builtinMarkdown(builtin: Builtin): string {
    const lines = ['```', ...builtinSignatures(builtin), '```', '', `*${builtin.category}* — ${builtin.doc}`];
    const params = new Map<string, string>();
    for (const overload of builtin.overloads) for (const p of overload) if (!params.has(p.name)) params.set(p.name, p.doc);
    if (params.size > 0) {
        lines.push('');
        for (const [name, doc] of params) lines.push(`- \`${name}\`: ${doc}`);
    }
    return lines.join('\n');
}

/** `2.7 min (162 s)`: the value as written, and in base units when that reads differently. */
export function describeValue(expr: ast.Expression | undefined, dim: Dim): string {
    const written = textOf(expr);
    const value = evaluateConstant(expr);
    if (typeof value !== 'number' || !Number.isFinite(value)) return written;
    let base: string;
    if (isTime(dim)) base = formatQuantity(value, dim, 's');
    else if (isRate(dim)) base = formatQuantity(value, dim, 's');
    else if (dim.kind === 'quantity' && dim.time === 0) base = formatQuantity(value, dim);
    else return written;
    return base === written ? written : `${written} (${base})`;
}

export class AiMatrixHoverProvider extends AstNodeHoverProvider {

    protected readonly documentation: LangiumServices['documentation']['DocumentationProvider'];

    constructor(services: LangiumServices) {
        super(services);
        this.documentation = services.documentation.DocumentationProvider;
    }

    override async getHoverContent(document: LangiumDocument, params: HoverParams): Promise<Hover | undefined> {
        try {
            return await this.hover(document, params);
        } catch {
            return undefined; // a broken tree gives no hover, never an error
        }
    }

    private async hover(document: LangiumDocument, params: HoverParams): Promise<Hover | undefined> {
        const root = document.parseResult?.value?.$cstNode;
        if (!root) return undefined;
        const offset = document.textDocument.offsetAt(params.position);
        const leaf = CstUtils.findLeafNodeAtOffset(root, offset);
        if (!leaf || leaf.hidden || !contains(leaf, offset)) return undefined;
        const node = leaf.astNode;

        // The name of a built-in in a call.
        if (ast.isCallExpr(node) && contains(GrammarUtils.findNodeForProperty(node.$cstNode, 'func'), offset)) {
            const builtin = findBuiltin(node.func);
            return builtin ? markdown(builtinMarkdown(builtin)) : undefined;
        }
        // The name of an argument of a built-in: the parameter's documentation.
        if (ast.isArgument(node) && contains(GrammarUtils.findNodeForProperty(node.$cstNode, 'name'), offset)) {
            const call = node.$container;
            const builtin = ast.isCallExpr(call) ? findBuiltin(call.func) : undefined;
            const param = builtin?.overloads.flat().find(p => p.name === node.name);
            if (builtin && param) return markdown(`\`${param.name}\` — parameter of \`${builtin.name}\`: ${param.doc}`);
            return undefined;
        }

        // A declaration or a reference.
        const declarationNode = CstUtils.findDeclarationNodeAtOffset(root, offset, this.grammarConfig.nameRegexp);
        if (declarationNode) {
            const contents: string[] = [];
            for (const target of this.references.findDeclarations(declarationNode)) {
                const content = await this.getAstNodeHoverContent(target);
                if (content) contents.push(content);
            }
            if (contents.length > 0) return markdown(contents.join('\n\n---\n\n'));
        }

        // A keyword (not one used as a name).
        const source = leaf.grammarSource;
        if (GrammarAST.isKeyword(source) && AstUtils.getContainerOfType(source, GrammarAST.isParserRule)?.name !== 'Name') {
            const doc = keywordDoc(source.value);
            if (doc) return markdown(`**${source.value}** — ${doc}`);
        }
        // A built-in typed as a bare name while its call is incomplete.
        const call = findCallContext(document.textDocument.getText(), leaf.end + 1);
        if (call && call.open === leaf.end && call.func === leaf.text) {
            const builtin = findBuiltin(call.func);
            if (builtin) return markdown(builtinMarkdown(builtin));
        }
        return undefined;
    }

    protected getAstNodeHoverContent(node: AstNode): MaybePromise<string | undefined> {
        const summary = this.summary(node);
        if (summary === undefined) return undefined;
        const doc = this.documentation.getDocumentation(node);
        return doc ? `${summary}\n\n${doc}` : summary;
    }

    private summary(node: AstNode): string | undefined {
        const name = (node as { name?: unknown }).name;
        const label = typeof name === 'string' ? name : '?';
        const kind = (text: string) => `**${text}** ${label}`;
        switch (node.$type) {
            case ast.Param.$type: {
                const param = node as ast.Param;
                const dim = inferDim(param.value);
                return `${kind('param')}: ${describeDim(dim)} = ${describeValue(param.value, dim)}`;
            }
            case ast.Attribute.$type:
            case ast.StateVar.$type:
            case ast.LetStmt.$type:
            case ast.Aux.$type:
            case ast.Stock.$type: {
                const keyword = { Attribute: 'attr', StateVar: 'state', LetStmt: 'let', Aux: 'aux', Stock: 'stock' }[node.$type] ?? node.$type;
                const value = (node as ast.Attribute | ast.StateVar | ast.LetStmt | ast.Aux).value ?? (node as ast.Stock).initial;
                return `${kind(keyword)}: ${describeDim(declarationDim(node))} = ${textOf(value)}`;
            }
            case ast.Flow.$type: {
                const flow = node as ast.Flow;
                const ends = `${flow.source ? ` from ${flow.source.$refText}` : ''}${flow.target ? ` to ${flow.target.$refText}` : ''}`;
                return `${kind('flow')}${ends}: ${describeDim(declarationDim(flow))} = ${textOf(flow.rate)}`;
            }
            case ast.Kpi.$type: {
                const kpi = node as ast.Kpi;
                const unit = kpi.unit ? `, reported in ${unitSpecText(kpi.unit)}` : '';
                return `${kind('kpi')}: ${describeDim(declarationDim(kpi))}${unit} = ${textOf(kpi.value)}`;
            }
            case ast.Model.$type:
                return this.modelSummary(node as ast.Model);
            case ast.Twin.$type: {
                const twin = node as ast.Twin;
                const file = AstUtils.getDocument(twin).uri.path.split('/').pop() ?? '';
                return `${kind('twin')} — ${file}, ${twin.members.length} members`;
            }
            case ast.Experiment.$type: {
                const experiment = node as ast.Experiment;
                return `${kind('experiment')} for ${experiment.twin?.$refText ?? '?'}`;
            }
            case ast.System.$type: {
                const system = node as ast.System;
                return `${kind('system')}${system.twin ? ` observes ${system.twin.$refText}` : ''}`;
            }
            case ast.Entity.$type: {
                const entity = node as ast.Entity;
                const attrs = entity.attributes.map(a => a.name).join(', ');
                return `${kind('entity')}${attrs ? ` { ${attrs} }` : ''}`;
            }
            case ast.Resource.$type: {
                const resource = node as ast.Resource;
                return `${kind('resource')} capacity ${textOf(resource.capacity)}, queue ${resource.discipline ?? 'fifo'}`;
            }
            case ast.Source.$type: {
                const source = node as ast.Source;
                return `${kind('source')} creates ${source.entity?.$refText ?? '?'} every ${textOf(source.interarrival)} into ${source.target?.$refText ?? '?'}`;
            }
            case ast.Process.$type: {
                const process = node as ast.Process;
                return `${kind('process')} for ${process.entity?.$refText ?? '?'}, ${process.steps.length} steps`;
            }
            case ast.Population.$type:
            case ast.Swarm.$type: {
                const group = node as ast.Population | ast.Swarm;
                return `${kind(node.$type === 'Swarm' ? 'swarm' : 'population')} of ${group.agent?.$refText ?? '?'}, count ${textOf(group.count)}`;
            }
            case ast.Agent.$type: {
                const agent = node as ast.Agent;
                const states = agent.members.filter(ast.isStateVar).map(s => s.name).join(', ');
                return `${kind('agent')}${states ? ` — state ${states}` : ''}`;
            }
            case ast.Channel.$type: {
                const channel = node as ast.Channel;
                return `${kind('channel')} { ${channel.fields.map(f => `${f.name}: ${f.type}`).join(', ')} }`;
            }
            case ast.Coordinator.$type: {
                const c = node as ast.Coordinator;
                return `${kind('coordinator')} over ${c.swarm?.$refText ?? '?'}, strategy ${c.strategy ?? '?'}`;
            }
            case ast.Decision.$type: {
                const decision = node as ast.Decision;
                const criteria = decision.members.filter(ast.isCriterion).map(c => c.name);
                const options = decision.members.filter(ast.isDecisionOption).map(o => o.name);
                return `${kind('decision')} — criteria ${criteria.join(', ') || 'none'}; options ${options.join(', ') || 'none'}`;
            }
            case ast.Criterion.$type: {
                const criterion = node as ast.Criterion;
                return `${kind('criterion')} weight ${textOf(criterion.weight)}, ${criterion.goal ?? 'maximize'}`;
            }
            case ast.DecisionOption.$type:
                return kind('option');
            case ast.MessageParam.$type: {
                const behaviour = node.$container as ast.MessageBehaviour | undefined;
                return `${kind('message')} on ${behaviour?.channel?.$refText ?? '?'}`;
            }
            default:
                return undefined;
        }
    }

    private modelSummary(model: ast.Model): string {
        const lines = [`**model** ${model.name}`];
        const file = model.settings.find(ast.isModelFile);
        lines.push(`- file: ${file ? `\`${file.path}\`` : '(none)'}`);
        for (const tensor of model.settings.filter(ast.isTensorSpec)) {
            const shape = tensor.dims.length > 0 ? `[${tensor.dims.map(d => d.symbol ?? String(d.size)).join(', ')}]` : '';
            lines.push(`- ${tensor.kind} \`${tensor.name}\`: ${tensor.elementType}${shape}`);
        }
        const providers = model.settings.find(ast.isProviderList);
        lines.push(`- providers: ${providers ? providers.providers.join(', ') : 'cpu (default)'}`);
        const batch = model.settings.find(ast.isBatchSetting);
        if (batch) lines.push(`- batch ${textOf(batch.size)}${batch.maxWait ? `, wait ${textOf(batch.maxWait)}` : ''}`);
        const cache = model.settings.find(ast.isCacheSetting);
        if (cache) lines.push(`- cache ${textOf(cache.size)}${cache.ttl ? `, ttl ${textOf(cache.ttl)}` : ''}`);
        return lines.join('\n');
    }
}
