/**
 * Semantic checks of both languages. Every diagnostic carries a code from `issue-codes.ts`
 * and `IssueData` for quick fixes. The checks live in one file per concern:
 * `expression-validator.ts` (units, built-in calls, distribution parameters),
 * `twin-validator.ts` (twins and experiments) and `agent-validator.ts` (agent systems
 * and models); this file registers them and checks whole files (imports, names that
 * collide across files).
 *
 * Every check looks at one node and its direct neighbourhood, or computes per-twin maps
 * once (reachability, held resources), so validation stays linear in the file's size.
 */
import { AstUtils, type AstNode, type LangiumDocument, type LangiumDocuments, type ValidationAcceptor, type ValidationChecks, type IndexManager, type FileSystemProvider } from 'langium';
import * as ast from '../generated/ast.js';
import type { AiMatrixServices } from './aimatrix-module.js';
import { importedUris, resolveImport } from './aimatrix-scope-provider.js';
import { AgentValidator, type ModelFileReader } from './agent-validator.js';
import { ExpressionValidator } from './expression-validator.js';
import { IssueCodes } from './issue-codes.js';
import { TwinValidator } from './twin-validator.js';
import { unquote } from './units.js';
import { checkDuplicates, kindName, report } from './validation-util.js';

export type { ModelFileReader } from './agent-validator.js';

export function registerValidationChecks(services: AiMatrixServices): void {
    const registry = services.validation.ValidationRegistry;
    const v = services.validation.AiMatrixValidator;
    const e = v.expressions;
    const t = v.twins;
    const a = v.agents;
    const checks: ValidationChecks<ast.AiMatrixAstType> = {
        TwinFile: (node, accept) => v.checkFile(node, accept),
        AgentFile: (node, accept) => v.checkFile(node, accept),
        Import: (node, accept) => v.checkImport(node, accept),
        // expressions
        BinaryExpr: (node, accept) => e.checkBinaryExpr(node, accept),
        UnaryExpr: (node, accept) => e.checkUnaryExpr(node, accept),
        CallExpr: (node, accept) => e.checkCallExpr(node, accept),
        // twins
        Twin: (node, accept) => t.checkTwin(node, accept),
        Entity: (node, accept) => t.checkEntity(node, accept),
        Resource: (node, accept) => t.checkResource(node, accept),
        Population: (node, accept) => t.checkPopulation(node, accept),
        Source: (node, accept) => t.checkSource(node, accept),
        DelayStep: (node, accept) => t.checkDelayStep(node, accept),
        WaitStep: (node, accept) => t.checkWaitStep(node, accept),
        SeizeStep: (node, accept) => t.checkSeizeStep(node, accept),
        ReleaseStep: (node, accept) => t.checkReleaseStep(node, accept),
        RouteStep: (node, accept) => t.checkRouteStep(node, accept),
        BranchStep: (node, accept) => t.checkBranchStep(node, accept),
        AssignStep: (node, accept) => t.checkAssignStep(node, accept),
        Flow: (node, accept) => t.checkFlow(node, accept),
        Integration: (node, accept) => t.checkIntegration(node, accept),
        Kpi: (node, accept) => t.checkKpi(node, accept),
        Experiment: (node, accept) => t.checkExperiment(node, accept),
        Horizon: (node, accept) => t.checkHorizon(node, accept),
        Warmup: (node, accept) => t.checkWarmup(node, accept),
        Replications: (node, accept) => t.checkReplications(node, accept),
        Seed: (node, accept) => t.checkSeed(node, accept),
        Override: (node, accept) => t.checkOverride(node, accept),
        Sweep: (node, accept) => t.checkSweep(node, accept),
        // agents
        System: (node, accept) => a.checkSystem(node, accept),
        Agent: (node, accept) => a.checkAgent(node, accept),
        Channel: (node, accept) => a.checkChannel(node, accept),
        Swarm: (node, accept) => a.checkSwarm(node, accept),
        Coordinator: (node, accept) => a.checkCoordinator(node, accept),
        TimerBehaviour: (node, accept) => a.checkTimerBehaviour(node, accept),
        ConditionBehaviour: (node, accept) => a.checkConditionBehaviour(node, accept),
        IfStmt: (node, accept) => a.checkIfStmt(node, accept),
        SetStmt: (node, accept) => a.checkSetStmt(node, accept),
        SendStmt: (node, accept) => a.checkSendStmt(node, accept),
        MemberAccess: (node, accept) => a.checkMemberAccess(node, accept),
        Decision: (node, accept) => a.checkDecision(node, accept),
        Criterion: (node, accept) => a.checkCriterion(node, accept),
        BatchSetting: (node, accept) => a.checkBatchSetting(node, accept),
        CacheSetting: (node, accept) => a.checkCacheSetting(node, accept),
        Model: (node, accept) => a.checkModel(node, accept)
    };
    registry.register(checks, v);
}

export class AiMatrixValidator {
    readonly expressions = new ExpressionValidator();
    readonly twins: TwinValidator;
    readonly agents: AgentValidator;
    private readonly documents: LangiumDocuments;
    private readonly fileSystem: FileSystemProvider;
    private readonly indexManager: IndexManager;

    constructor(services: AiMatrixServices) {
        this.twins = new TwinValidator(this.expressions);
        this.agents = new AgentValidator(this.expressions);
        this.documents = services.shared.workspace.LangiumDocuments;
        this.fileSystem = services.shared.workspace.FileSystemProvider;
        this.indexManager = services.shared.workspace.IndexManager;
    }

    /** Replaces how model files are read (tests, hosts without a file system). */
    setModelFileReader(reader: ModelFileReader): void {
        this.agents.modelFiles = reader;
    }

    /** An import is found when a document with its URI is loaded or the file exists. */
    checkImport(node: ast.Import, accept: ValidationAcceptor): void {
        if (!node.path) return;
        const document = AstUtils.getDocument(node);
        const uri = resolveImport(document.uri, node.path);
        if (uri.toString() === document.uri.toString()) {
            report(accept, 'warning', IssueCodes.ImportNotFound, `A file does not need to import itself.`, node, 'path');
            return;
        }
        if (this.documents.hasDocument(uri)) return;
        let exists = false;
        try {
            exists = this.fileSystem.existsSync(uri);
        } catch {
            exists = false;
        }
        if (!exists) {
            report(accept, 'error', IssueCodes.ImportNotFound, `Cannot find '${unquote(node.path)}' (looked for ${uri.scheme === 'file' ? uri.fsPath : uri.toString()}).`, node, 'path');
        }
    }

    /** An import of a loaded file from which this file references nothing. */
    private checkUnusedImports(file: ast.TwinFile | ast.AgentFile, document: LangiumDocument, accept: ValidationAcceptor): void {
        if (file.imports.length === 0) return;
        const used = new Set<string>();
        for (const reference of document.references) {
            const uri = '$nodeDescription' in reference ? reference.$nodeDescription?.documentUri : undefined;
            if (uri) used.add(uri.toString());
        }
        for (const node of file.imports) {
            if (!node.path) continue;
            const uri = resolveImport(document.uri, node.path);
            if (uri.toString() === document.uri.toString() || !this.documents.hasDocument(uri) || used.has(uri.toString())) continue;
            if (ast.isTwinFile(file) && observesTwinOf(this.documents.getDocument(uri)?.parseResult.value, file)) continue;
            report(accept, 'warning', IssueCodes.ImportNotNeeded, `Nothing from '${unquote(node.path)}' is used in this file.`, node, 'path');
        }
    }

    /** Names declared twice in a file, and top-level names that an imported file declares too. */
    checkFile(file: ast.TwinFile | ast.AgentFile, accept: ValidationAcceptor): void {
        const topLevel: (AstNode & { name: string })[] = ast.isTwinFile(file) ? [...file.elements] : [...file.systems];
        checkDuplicates(topLevel, n => kindName(n.$type), 'this file', accept);
        const exported: (AstNode & { name: string })[] = [...topLevel];
        if (ast.isAgentFile(file)) for (const system of file.systems) exported.push(...system.members);
        const document = AstUtils.getDocument(file);
        this.checkUnusedImports(file, document, accept);
        const imported = new Set(importedUris(document).map(u => u.toString()));
        imported.delete(document.uri.toString());
        if (imported.size === 0 || exported.length === 0) return;
        const elsewhere = new Map<string, string>();
        for (const d of this.indexManager.allElements(undefined, imported)) {
            if (!elsewhere.has(d.name)) elsewhere.set(d.name, d.documentUri.path.split('/').pop() ?? d.documentUri.toString());
        }
        for (const node of exported) {
            const other = node.name ? elsewhere.get(node.name) : undefined;
            if (other !== undefined) {
                report(accept, 'error', IssueCodes.DuplicateName,
                    `'${node.name}' is also declared in the imported file '${other}': rename one of them.`, node, 'name');
            }
        }
    }
}

/**
 * A twin file's import of an agent file whose system observes one of its twins is used:
 * it is what makes that system run with the twin (docs/language.md, "Systems").
 */
function observesTwinOf(imported: unknown, file: ast.TwinFile): boolean {
    if (!ast.isAgentFile(imported)) return false;
    const twins = new Set(file.elements.filter(ast.isTwin));
    return imported.systems.some(system => system.twin?.ref !== undefined && twins.has(system.twin.ref));
}
