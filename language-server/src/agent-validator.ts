/**
 * Checks of the agent language: names, behaviours, messages against their channels,
 * decisions, and models against their ONNX files (read for their metadata only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AstUtils, type ValidationAcceptor } from 'langium';
import * as ast from '../generated/ast.js';
import { IssueCodes } from './issue-codes.js';
import type { ExpressionValidator } from './expression-validator.js';
import { readOnnxMetadata, type OnnxMetadata, type OnnxTensorInfo } from './onnx-metadata.js';
import { checkAssignable } from './twin-validator.js';
import { evaluateConstant, unquote, valueTypeDim } from './units.js';
import { checkDuplicates, didYouMean, kindName, nearestName, report } from './validation-util.js';

/** How the validator reads model files: injectable so that tests and other hosts can supply their own. */
export interface ModelFileReader {
    /** The file's modification time and size, or undefined when there is no such file. */
    stat(file: string): { mtimeMs: number; size: number } | undefined;
    read(file: string): Uint8Array;
}

export const NodeModelFileReader: ModelFileReader = {
    stat(file) {
        try {
            const s = fs.statSync(file);
            return s.isFile() ? { mtimeMs: s.mtimeMs, size: s.size } : undefined;
        } catch {
            return undefined;
        }
    },
    read(file) {
        return fs.readFileSync(file);
    }
};

type ModelInfo = { kind: 'missing' } | { kind: 'invalid'; reason: string } | { kind: 'model'; metadata: OnnxMetadata };

export class AgentValidator {
    /** ONNX metadata per file, valid while the file's mtime and size are unchanged. */
    private readonly metadataCache = new Map<string, { mtimeMs: number; size: number; info: ModelInfo }>();

    constructor(private readonly expressions: ExpressionValidator, public modelFiles: ModelFileReader = NodeModelFileReader) {}

    checkSystem(system: ast.System, accept: ValidationAcceptor): void {
        const named = system.members;
        checkDuplicates(named, m => kindName(m.$type), `system ${system.name}`, accept);
    }

    checkAgent(agent: ast.Agent, accept: ValidationAcceptor): void {
        checkDuplicates(agent.members.filter(ast.isStateVar), () => 'state', `agent ${agent.name}`, accept);
    }

    checkChannel(channel: ast.Channel, accept: ValidationAcceptor): void {
        checkDuplicates(channel.fields, () => 'field', `channel ${channel.name}`, accept);
    }

    checkSwarm(swarm: ast.Swarm, accept: ValidationAcceptor): void {
        this.expressions.expectCount(swarm.count, 'The count of a swarm', accept, swarm, 'count');
        const value = evaluateConstant(swarm.count);
        if (typeof value === 'number' && !(value > 0 && Number.isInteger(value))) {
            report(accept, 'error', IssueCodes.InvalidCapacity, `The count of swarm '${swarm.name}' must be a whole number above 0, but it is ${value}.`, swarm, 'count',
                { suggestion: String(Math.max(1, Math.round(value))) });
        }
    }

    checkCoordinator(coordinator: ast.Coordinator, accept: ValidationAcceptor): void {
        this.expressions.expectTime(coordinator.heartbeat, 'The heartbeat', accept, coordinator, 'heartbeat');
    }

    checkTimerBehaviour(timer: ast.TimerBehaviour, accept: ValidationAcceptor): void {
        this.expressions.expectTime(timer.interval, 'The interval of an `every` behaviour', accept, timer, 'interval');
    }

    checkConditionBehaviour(behaviour: ast.ConditionBehaviour, accept: ValidationAcceptor): void {
        this.expressions.expectCondition(behaviour.condition, `A 'when' behaviour`, accept, behaviour, 'condition');
    }

    checkIfStmt(stmt: ast.IfStmt, accept: ValidationAcceptor): void {
        this.expressions.expectCondition(stmt.condition, `The condition of 'if'`, accept, stmt, 'condition');
    }

    checkSetStmt(stmt: ast.SetStmt, accept: ValidationAcceptor): void {
        checkAssignable(stmt.target, stmt.value, stmt, accept, this.expressions);
    }

    /** `send C { field: value }`: every field of the channel, each once, of its type. */
    checkSendStmt(send: ast.SendStmt, accept: ValidationAcceptor): void {
        const channel = send.channel?.ref;
        if (!channel) return;
        const fields = new Map(channel.fields.map(f => [f.name, f]));
        const given = new Set<string>();
        for (const arg of send.args) {
            if (arg.name === undefined) {
                report(accept, 'error', IssueCodes.UnknownMessageField,
                    `A message field needs its name: \`send ${channel.name} { field: value }\`.`, arg, 'value');
                continue;
            }
            const field = fields.get(arg.name);
            if (!field) {
                const suggestion = nearestName(arg.name, fields.keys());
                report(accept, 'error', IssueCodes.UnknownMessageField,
                    `Channel ${channel.name} has no field '${arg.name}'.${didYouMean(suggestion)}`, arg, 'name', { suggestion });
                continue;
            }
            if (given.has(arg.name)) {
                report(accept, 'error', IssueCodes.DuplicateName, `Field '${arg.name}' is given twice.`, arg, 'name');
                continue;
            }
            given.add(arg.name);
            this.expressions.expectSameDim(arg.value, valueTypeDim(field.type), `Field '${field.name}' of channel ${channel.name}`, accept, arg, 'value');
        }
        const missing = channel.fields.filter(f => !given.has(f.name));
        if (missing.length > 0) {
            report(accept, 'error', IssueCodes.MissingMessageField,
                `Channel ${channel.name} needs ${missing.map(f => `'${f.name}'`).join(', ')} in every message.`, send, 'channel',
                { suggestion: missing.map(f => `${f.name}: `).join(', ') });
        }
    }

    /** `msg.field` on a received message, and `swarm.state` on a swarm or population. */
    checkMemberAccess(access: ast.MemberAccess, accept: ValidationAcceptor): void {
        if (!ast.isRefExpr(access.receiver)) return;
        const target = access.receiver.target?.ref;
        if (ast.isMessageParam(target)) {
            const channel = target.$container.channel?.ref;
            if (!channel || access.member === undefined || channel.fields.some(f => f.name === access.member)) return;
            const suggestion = nearestName(access.member, channel.fields.map(f => f.name));
            report(accept, 'error', IssueCodes.UnknownMessageField,
                `Messages on channel ${channel.name} have no field '${access.member}'.${didYouMean(suggestion)}`, access, 'member', { suggestion });
        } else if (ast.isSwarm(target) || ast.isPopulation(target)) {
            const agent = target.agent?.ref;
            if (!agent) return;
            const states = agent.members.filter(ast.isStateVar).map(s => s.name);
            if (access.member === undefined || states.includes(access.member)) return;
            const suggestion = nearestName(access.member, states);
            report(accept, 'error', IssueCodes.UnresolvedReference,
                `Agent ${agent.name} has no state '${access.member}'.${didYouMean(suggestion)}`, access, 'member', { suggestion });
        }
    }

    checkDecision(decision: ast.Decision, accept: ValidationAcceptor): void {
        checkDuplicates(decision.members, m => kindName(m.$type), `decision ${decision.name}`, accept);
        const criteria = decision.members.filter(ast.isCriterion);
        const options = decision.members.filter(ast.isDecisionOption);
        if (options.length === 0 || criteria.length === 0) {
            report(accept, 'error', IssueCodes.DecisionWithoutOptions,
                `Decision '${decision.name}' needs at least one option and one criterion (it has ${options.length} option${options.length === 1 ? '' : 's'} and ${criteria.length} criteri${criteria.length === 1 ? 'on' : 'a'}).`,
                decision, 'name');
            return;
        }
        for (const option of options) {
            const scored = new Set<ast.Criterion>();
            for (const score of option.scores) {
                const criterion = score.criterion?.ref;
                if (!criterion) continue;
                if (scored.has(criterion)) {
                    report(accept, 'error', IssueCodes.DuplicateName, `Option '${option.name}' scores '${criterion.name}' twice.`, score, 'criterion');
                }
                scored.add(criterion);
            }
            const missing = criteria.filter(c => !scored.has(c));
            if (missing.length > 0) {
                report(accept, 'error', IssueCodes.MissingScore,
                    `Option '${option.name}' has no score for ${missing.map(c => `'${c.name}'`).join(', ')}.`, option, 'name',
                    { suggestion: missing.map(c => `${c.name}: 0`).join(', ') });
            }
        }
    }

    checkCriterion(criterion: ast.Criterion, accept: ValidationAcceptor): void {
        this.expressions.expectCount(criterion.weight, 'The weight of a criterion', accept, criterion, 'weight');
    }

    checkBatchSetting(batch: ast.BatchSetting, accept: ValidationAcceptor): void {
        this.expressions.expectCount(batch.size, 'The batch size', accept, batch, 'size');
        this.expressions.expectTime(batch.maxWait, `The batch 'wait'`, accept, batch, 'maxWait');
    }

    checkCacheSetting(cache: ast.CacheSetting, accept: ValidationAcceptor): void {
        this.expressions.expectCount(cache.size, 'The cache size', accept, cache, 'size');
        this.expressions.expectTime(cache.ttl, `The cache 'ttl'`, accept, cache, 'ttl');
    }

    // ------------------------------------------------------------ models

    checkModel(model: ast.Model, accept: ValidationAcceptor): void {
        const seen = new Map<string, ast.ModelSetting>();
        for (const setting of model.settings) {
            if (ast.isTensorSpec(setting)) continue;
            if (seen.has(setting.$type)) {
                report(accept, 'error', IssueCodes.DuplicateSetting, `Model '${model.name}' has more than one ${settingKeyword(setting)} setting.`, setting);
            } else {
                seen.set(setting.$type, setting);
            }
        }
        const tensors = model.settings.filter(ast.isTensorSpec);
        for (const kind of ['input', 'output'] as const) {
            const names = new Set<string>();
            for (const tensor of tensors.filter(t => t.kind === kind)) {
                const name = tensorName(tensor);
                if (names.has(name)) {
                    report(accept, 'error', IssueCodes.DuplicateName, `Duplicate ${kind} '${name}' in model '${model.name}'.`, tensor, 'name');
                }
                names.add(name);
            }
        }
        const file = model.settings.find(ast.isModelFile);
        if (file && file.path === undefined) return;
        if (!file) {
            report(accept, 'error', IssueCodes.ModelWithoutFile, `Model '${model.name}' has no 'file': say which ONNX file it runs.`, model, 'name',
                { suggestion: `file "models/${(model.name ?? 'model').toLowerCase()}.onnx"` });
            return;
        }
        const uri = AstUtils.getDocument(model).uri;
        if (uri.scheme !== 'file') return;
        const relative = unquote(file.path);
        const absolute = path.resolve(path.dirname(uri.fsPath), relative);
        const info = this.modelInfo(absolute);
        if (info.kind === 'missing') {
            report(accept, 'error', IssueCodes.ModelFileMissing, `Model file '${relative}' not found (looked for ${absolute}).`, file, 'path');
            return;
        }
        if (info.kind === 'invalid') {
            report(accept, 'error', IssueCodes.ModelFileNotOnnx, `Model file '${relative}' is ${info.reason}.`, file, 'path');
            return;
        }
        this.compareTensors(model, tensors, info.metadata, accept);
    }

    private modelInfo(file: string): ModelInfo {
        const stat = this.modelFiles.stat(file);
        if (!stat) {
            this.metadataCache.delete(file);
            return { kind: 'missing' };
        }
        const cached = this.metadataCache.get(file);
        if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.info;
        let info: ModelInfo;
        try {
            info = { kind: 'model', metadata: readOnnxMetadata(this.modelFiles.read(file)) };
        } catch (error) {
            info = { kind: 'invalid', reason: error instanceof Error ? error.message : String(error) };
        }
        this.metadataCache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, info });
        return info;
    }

    private compareTensors(model: ast.Model, tensors: ast.TensorSpec[], metadata: OnnxMetadata, accept: ValidationAcceptor): void {
        const declaredInputs = new Set<string>();
        for (const tensor of tensors) {
            const name = tensorName(tensor);
            const actual = tensor.kind === 'input' ? metadata.inputs : metadata.outputs;
            if (tensor.kind === 'input') declaredInputs.add(name);
            const info = actual.find(t => t.name === name);
            if (!info) {
                const suggestion = nearestName(name, actual.map(t => t.name)) ?? (actual.length === 1 ? actual[0].name : undefined);
                const list = actual.map(t => `'${t.name}'`).join(', ') || 'none';
                report(accept, 'error', IssueCodes.ModelTensorUnknown,
                    `The ONNX file of model '${model.name}' has no ${tensor.kind} '${name}' (its ${tensor.kind}s: ${list}).${didYouMean(suggestion)}`,
                    tensor, 'name', { suggestion });
                continue;
            }
            if (tensor.elementType && info.type !== tensor.elementType) {
                report(accept, 'error', IssueCodes.ModelTensorTypeMismatch,
                    `${capitalize(tensor.kind)} '${name}' is ${info.type} in the ONNX file, not ${tensor.elementType}.`, tensor, 'elementType', { suggestion: info.type });
            }
            if (tensor.dims.length > 0 && info.hasShape && !shapesMatch(tensor.dims, info.shape)) {
                report(accept, 'error', IssueCodes.ModelTensorShapeMismatch,
                    `${capitalize(tensor.kind)} '${name}' has shape ${formatShape(info.shape)} in the ONNX file, not ${formatDeclared(tensor.dims)}.`,
                    tensor, 'dims', { suggestion: formatShape(info.shape) });
            }
        }
        for (const input of metadata.inputs) {
            if (declaredInputs.has(input.name)) continue;
            report(accept, 'error', IssueCodes.ModelInputMissing,
                `Model '${model.name}' does not declare input '${input.name}' of its ONNX file (${input.type} ${formatShape(input.shape)}).`, model, 'name',
                { suggestion: declaration(input) });
        }
    }
}

function settingKeyword(setting: ast.ModelSetting): string {
    switch (setting.$type) {
        case 'ModelFile': return `'file'`;
        case 'ProviderList': return `'providers'`;
        case 'BatchSetting': return `'batch'`;
        case 'CacheSetting': return `'cache'`;
        default: return `'${setting.$type}'`;
    }
}

export function tensorName(tensor: ast.TensorSpec): string {
    return unquote(tensor.name ?? '');
}

function capitalize(s: string): string {
    return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Ranks must agree; fixed sizes must agree; a symbolic dimension on either side matches anything. */
function shapesMatch(declared: readonly ast.Dim[], actual: readonly (number | string)[]): boolean {
    if (declared.length !== actual.length) return false;
    return declared.every((d, i) => d.symbol !== undefined || typeof actual[i] !== 'number' || d.size === actual[i]);
}

function formatShape(shape: readonly (number | string)[]): string {
    return `[${shape.join(', ')}]`;
}

function formatDeclared(dims: readonly ast.Dim[]): string {
    return `[${dims.map(d => d.symbol ?? String(d.size)).join(', ')}]`;
}

function declaration(tensor: OnnxTensorInfo): string {
    const name = /^[_a-zA-Z]\w*$/.test(tensor.name) ? tensor.name : JSON.stringify(tensor.name);
    const shape = tensor.shape.length > 0 ? ` ${formatShape(tensor.shape.map(d => d === '?' ? 'N' : d))}` : '';
    return `input ${name}: ${tensor.type}${shape}`;
}
