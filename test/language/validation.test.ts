/**
 * Semantic validation: for every diagnostic code that validation raises, a case that
 * raises it and a similar case that does not (and has no errors at all). Further tests
 * pin the messages and data that quick fixes rely on, and the ONNX metadata reader.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeFileSystem } from 'langium/node';
import type { Diagnostic } from 'vscode-languageserver';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { NodeModelFileReader } from '../../language-server/src/agent-validator.js';
import { IssueCodes } from '../../language-server/src/issue-codes.js';
import { readOnnxMetadata } from '../../language-server/src/onnx-metadata.js';
import { DataType, identityModel, standardModel, tempFolder } from './helpers/onnx-models.js';
import { describe as describeDiagnostics, validateFiles, type Validated } from './helpers/validate.js';

// ---------------------------------------------------------------- fixtures

/** A bank twin whose `Serve` process, extra members and experiment can be replaced. */
function bank(options: { serve?: string; members?: string; experiment?: string; params?: string } = {}): string {
    return `twin Bank {
  ${options.params ?? 'param tellers = 3'}
  param serviceMean = 2.7 min
  resource Teller capacity tellers
  entity Customer { attr patience = 5 min }
  source Arrivals creates Customer every exponential(mean: 1 min) into Serve
  process Serve for Customer {
    ${options.serve ?? 'seize Teller\n    delay exponential(mean: serviceMean)\n    release Teller'}
  }
  ${options.members ?? ''}
  kpi wait = mean(waitTime(Serve)) in min
  kpi busy = utilization(Teller)
}
experiment Baseline for Bank {
  ${options.experiment ?? 'horizon 8 h\n  warmup 1 h\n  replications 30\n  seed 7\n  sweep tellers in [3, 4]'}
}
`;
}

/** An agent system with a channel, an agent, a decision; parts can be replaced. */
function ops(options: { agent?: string; members?: string; decision?: string } = {}): string {
    return `system Ops {
  channel Alerts { level: number, note: string }
  agent Manager {
    state open = 3
    state busy = false
    ${options.agent ?? 'every 5 min { send Alerts { level: open, note: "tick" } }\n    on Alerts as msg { set open = msg.level }\n    when busy { set busy = false }'}
  }
  swarm Managers of Manager count 4
  coordinator Lead over Managers strategy leader heartbeat 10 s
  ${options.decision ?? 'decision Pick { criterion cost weight 1 minimize  criterion speed weight 2  option A { cost: 1, speed: 2 }  option B { cost: 2, speed: 3 } }'}
  ${options.members ?? ''}
}
`;
}

type Files = Record<string, string>;

interface Case {
    /** What the bad case shows. */
    name: string;
    bad: Files;
    good: Files;
    /** Errors the corrected case may still have (a model slot checked without a model file). */
    allow?: string[];
}

const twin = (text: string): Files => ({ 'main.twin': text });
const agent = (text: string): Files => ({ 'main.agent': text });

function errorsOf(v: Validated, file: string): Diagnostic[] {
    return v.diagnostics(file).filter(d => d.severity === 1);
}

// ---------------------------------------------------------------- one case per code (model codes below)

const CASES: Partial<Record<string, Case[]>> = {
    [IssueCodes.UnresolvedReference]: [
        { name: 'a misspelt resource', bad: twin(bank({ serve: 'seize Tellr\n release Teller' })), good: twin(bank()) },
        { name: 'an experiment for an unknown twin', bad: twin('experiment E for Bnk { horizon 1 h }'), good: twin(bank()) },
        { name: 'a state a swarm does not have', bad: agent(ops({ members: 'decision D { criterion c weight sum(Managers.opn)  option A { c: 1 } }' })), good: agent(ops({ members: 'decision D { criterion c weight 1  option A { c: sum(Managers.open) } }' })) }
    ],
    [IssueCodes.DuplicateName]: [
        { name: 'two twin members with one name', bad: twin(bank({ members: 'param tellers = 4' })), good: twin(bank({ members: 'param clerks = 4' })) },
        { name: 'two attributes of an entity', bad: twin(bank({ members: 'entity Job { attr a = 1  attr a = 2 }' })), good: twin(bank({ members: 'entity Job { attr a = 1  attr b = 2 }' })) },
        { name: 'two twins in a file', bad: twin(`${bank()}\ntwin Bank { }`), good: twin(`${bank()}\ntwin Bank2 { }`) },
        { name: 'two system members', bad: agent(ops({ members: 'channel Alerts' })), good: agent(ops({ members: 'channel Pings' })) },
        { name: 'two states of an agent', bad: agent(ops({ members: 'agent Clerk { state a = 1  state a = 2 }' })), good: agent(ops({ members: 'agent Clerk { state a = 1  state b = 2 }' })) },
        { name: 'two fields of a channel', bad: agent(ops({ members: 'channel Pings { a: number, a: string }' })), good: agent(ops({ members: 'channel Pings { a: number, b: string }' })) },
        { name: 'two criteria of a decision', bad: agent(ops({ decision: 'decision Pick { criterion cost weight 1  criterion cost weight 2  option A { cost: 1 } }' })), good: agent(ops()) },
        {
            name: 'a twin also declared in an imported file',
            bad: { 'main.twin': `import "other.twin"\n${bank()}`, 'other.twin': 'twin Bank { }' },
            good: { 'main.twin': `import "other.twin"\n${bank()}`, 'other.twin': 'twin Shop { }' }
        }
    ],
    [IssueCodes.ImportNotFound]: [
        { name: 'an import of a file that is not there', bad: { 'main.twin': `import "missing.twin"\n${bank()}` }, good: { 'main.twin': `import "lib.twin"\n${bank()}\nexperiment OnLib for Lib { }`, 'lib.twin': 'twin Lib { }' } }
    ],
    [IssueCodes.ImportNotNeeded]: [
        {
            name: 'an import from which nothing is used',
            bad: { 'main.twin': `import "lib.twin"\n${bank()}`, 'lib.twin': 'twin Lib { }' },
            good: { 'main.twin': `import "lib.twin"\n${bank()}\nexperiment OnLib for Lib { horizon 1 h }`, 'lib.twin': 'twin Lib { }' }
        },
        {
            name: 'an agent import whose agents are not used',
            bad: { 'main.twin': `import "ops.agent"\ntwin City { param n = 3 }`, 'ops.agent': ops() },
            good: { 'main.twin': `import "ops.agent"\ntwin City { population People of Manager count 100 }`, 'ops.agent': ops() }
        }
    ],
    [IssueCodes.UnknownFunction]: [
        { name: 'a misspelt statistic', bad: twin(bank({ members: 'kpi w2 = meen(waitTime(Serve)) in min' })), good: twin(bank({ members: 'kpi w2 = stdev(waitTime(Serve)) in min' })) }
    ],
    [IssueCodes.UnknownArgument]: [
        { name: 'a misspelt argument name', bad: twin(bank({ serve: 'delay exponential(mena: 2 min)' })), good: twin(bank({ serve: 'delay exponential(mean: 2 min)' })) },
        { name: 'arguments of two overloads', bad: twin(bank({ serve: 'delay exponential(mean: 2 min, rate: 3 per h)' })), good: twin(bank({ serve: 'delay exponential(rate: 3 per h)' })) },
        { name: 'too many positional arguments', bad: twin(bank({ serve: 'delay normal(2 min, 1 min, 3 min)' })), good: twin(bank({ serve: 'delay normal(2 min, 1 min)' })) }
    ],
    [IssueCodes.MissingArgument]: [
        { name: 'normal without sd', bad: twin(bank({ serve: 'delay normal(mean: 2 min)' })), good: twin(bank({ serve: 'delay normal(mean: 2 min, sd: 30 s)' })) },
        { name: 'exponential with nothing', bad: twin(bank({ serve: 'delay exponential()' })), good: twin(bank({ serve: 'delay exponential(2 min)' })) }
    ],
    [IssueCodes.InvalidArgument]: [
        { name: 'a resource where a process is expected', bad: twin(bank({ members: 'kpi w2 = mean(waitTime(Teller)) in min' })), good: twin(bank({ members: 'kpi w2 = mean(timeInSystem(Serve)) in min' })) }
    ],
    [IssueCodes.UnitMismatch]: [
        { name: 'a count added to a time', bad: twin(bank({ serve: 'delay 3 + 2 min' })), good: twin(bank({ serve: 'delay 3 min + 2 min' })) },
        { name: 'a time compared with a count', bad: twin(bank({ serve: 'wait until serviceMean > 2' })), good: twin(bank({ serve: 'wait until serviceMean > 2 min' })) },
        { name: 'a KPI in minutes that is not a time', bad: twin(bank({ members: 'kpi u = utilization(Teller) in min' })), good: twin(bank({ members: 'kpi u = utilization(Teller)' })) },
        { name: 'a KPI per hour that is not a rate', bad: twin(bank({ members: 'kpi t = completed(Serve) in per h' })), good: twin(bank({ members: 'kpi t = throughput(Serve) in per h' })) },
        { name: 'uniform between a time and a count', bad: twin(bank({ serve: 'delay uniform(min: 1 min, max: 5)' })), good: twin(bank({ serve: 'delay uniform(min: 1 min, max: 5 min)' })) },
        { name: 'a rate argument that is a time', bad: twin(bank({ serve: 'delay exponential(rate: 3 min)' })), good: twin(bank({ serve: 'delay exponential(rate: 3 per min)' })) },
        { name: 'a sweep of times over a count parameter', bad: twin(bank({ experiment: 'horizon 8 h\n sweep tellers in [3 min, 4]' })), good: twin(bank({ experiment: 'horizon 8 h\n sweep tellers in [3, 4]' })) },
        { name: 'an override of the wrong unit', bad: twin(bank({ experiment: 'set serviceMean = 3' })), good: twin(bank({ experiment: 'set serviceMean = 3 min' })) },
        { name: 'a message field of the wrong type', bad: agent(ops({ agent: 'every 5 min { send Alerts { level: 3 min, note: "x" } }' })), good: agent(ops({ agent: 'every 5 min { send Alerts { level: 3, note: "x" } }' })) },
        { name: 'an assignment of the wrong unit', bad: twin(bank({ serve: 'assign patience = 3' })), good: twin(bank({ serve: 'assign patience = 3 min' })) }
    ],
    [IssueCodes.ExpectedTime]: [
        { name: 'a delay of a plain count', bad: twin(bank({ serve: 'delay 3' })), good: twin(bank({ serve: 'delay 0' })) },
        { name: 'a count inter-arrival time', bad: twin(bank().replace('every exponential(mean: 1 min)', 'every exponential(mean: 1)')), good: twin(bank().replace('every exponential(mean: 1 min)', 'every exponential(rate: 60 per h)')) },
        { name: 'a source until a count', bad: twin(bank().replace('into Serve', 'until 3 into Serve')), good: twin(bank().replace('into Serve', 'until 3 h into Serve')) },
        { name: 'a horizon of a count', bad: twin(bank({ experiment: 'horizon 8' })), good: twin(bank({ experiment: 'horizon 8 h' })) },
        { name: 'a warm-up of a count', bad: twin(bank({ experiment: 'horizon 8 h  warmup 1' })), good: twin(bank({ experiment: 'horizon 8 h  warmup 0' })) },
        { name: 'an integration step of a count', bad: twin(bank({ members: 'integrate rk4 step 1' })), good: twin(bank({ members: 'integrate rk4 step 1 min' })) },
        { name: 'a timer of a count', bad: agent(ops({ agent: 'every 5 { set open = 1 }' })), good: agent(ops({ agent: 'every 5 s { set open = 1 }' })) },
        { name: 'a heartbeat of a count', bad: agent(ops().replace('heartbeat 10 s', 'heartbeat 10')), good: agent(ops()) },
        { name: 'a batch wait of a count', bad: agent(ops({ members: 'model M { batch 8 wait 5 }' })), good: agent(ops({ members: 'model M { batch 8 wait 5 ms }' })), allow: [IssueCodes.ModelWithoutFile] },
        { name: 'a cache ttl of a count', bad: agent(ops({ members: 'model M { cache 100 ttl 60 }' })), good: agent(ops({ members: 'model M { cache 100 ttl 60 s }' })), allow: [IssueCodes.ModelWithoutFile] }
    ],
    [IssueCodes.ExpectedCount]: [
        { name: 'a capacity in minutes', bad: twin(bank().replace('capacity tellers', 'capacity 2 min')), good: twin(bank().replace('capacity tellers', 'capacity 2')) },
        { name: 'replications in hours', bad: twin(bank({ experiment: 'replications 3 h' })), good: twin(bank({ experiment: 'replications 3' })) },
        { name: 'a seed in seconds', bad: twin(bank({ experiment: 'seed 7 s' })), good: twin(bank({ experiment: 'seed 7' })) },
        { name: 'a source limit in minutes', bad: twin(bank().replace('into Serve', 'limit 5 min into Serve')), good: twin(bank().replace('into Serve', 'limit 500 into Serve')) },
        { name: 'a swarm count in minutes', bad: agent(ops().replace('count 4', 'count 4 min')), good: agent(ops()) },
        { name: 'a batch size in seconds', bad: agent(ops({ members: 'model M { batch 8 s }' })), good: agent(ops({ members: 'model M { batch 8 }' })), allow: [IssueCodes.ModelWithoutFile] },
        { name: 'a cache size in seconds', bad: agent(ops({ members: 'model M { cache 8 s }' })), good: agent(ops({ members: 'model M { cache 8 }' })), allow: [IssueCodes.ModelWithoutFile] }
    ],
    [IssueCodes.ExpectedCondition]: [
        { name: 'wait until a count', bad: twin(bank({ serve: 'wait until tellers' })), good: twin(bank({ serve: 'wait until tellers > 2' })) },
        { name: 'a branch arm when a time', bad: twin(bank({ serve: 'branch { when serviceMean { delay 1 min } otherwise { } }' })), good: twin(bank({ serve: 'branch { when serviceMean > 1 min { delay 1 min } otherwise { } }' })) },
        { name: 'an if on a count', bad: agent(ops({ agent: 'every 1 min { if open { set open = 0 } }' })), good: agent(ops({ agent: 'every 1 min { if open > 0 { set open = 0 } }' })) },
        { name: 'a when behaviour on a count', bad: agent(ops({ agent: 'when open { set busy = true }' })), good: agent(ops({ agent: 'when open > 2 and not busy { set busy = true }' })) }
    ],
    [IssueCodes.InvalidDistributionParameter]: [
        { name: 'a negative mean', bad: twin(bank({ serve: 'delay exponential(mean: -2 min)' })), good: twin(bank({ serve: 'delay exponential(mean: 2 min)' })) },
        { name: 'a zero mean through a parameter', bad: twin(bank({ params: 'param tellers = 3\n param m = 0 min', serve: 'delay exponential(mean: m)' })), good: twin(bank({ params: 'param tellers = 3\n param m = 1 min', serve: 'delay exponential(mean: m)' })) },
        { name: 'a negative standard deviation', bad: twin(bank({ serve: 'delay normal(mean: 5 min, sd: -1 min)' })), good: twin(bank({ serve: 'delay normal(mean: 5 min, sd: 0 min)' })) },
        { name: 'min greater than max', bad: twin(bank({ serve: 'delay uniform(min: 5 min, max: 2 min)' })), good: twin(bank({ serve: 'delay uniform(min: 2 min, max: 5 min)' })) },
        { name: 'a mode outside [min, max]', bad: twin(bank({ serve: 'delay triangular(1 min, 9 min, 5 min)' })), good: twin(bank({ serve: 'delay triangular(1 min, 3 min, 5 min)' })) },
        { name: 'a negative empirical weight', bad: twin(bank({ serve: 'delay empirical(values: [1 min, 2 min], weights: [1, -1])' })), good: twin(bank({ serve: 'delay empirical(values: [1 min, 2 min], weights: [1, 3])' })) },
        { name: 'one weight for two values', bad: twin(bank({ serve: 'delay empirical(values: [1 min, 2 min], weights: [1])' })), good: twin(bank({ serve: 'delay empirical(values: [1 min, 2 min])' })) }
    ],
    [IssueCodes.ProbabilityOutOfRange]: [
        { name: 'bernoulli with p above 1', bad: agent(ops({ agent: 'every 1 min { set busy = bernoulli(p: 1.5) }' })), good: agent(ops({ agent: 'every 1 min { set busy = bernoulli(p: 0.5) }' })) },
        { name: 'a branch probability above 1', bad: twin(bank({ serve: 'branch { prob 1.2 { } prob -0.2 { } }' })), good: twin(bank({ serve: 'branch { prob 0.2 { } prob 0.8 { } }' })) }
    ],
    [IssueCodes.InvalidCapacity]: [
        { name: 'a fractional capacity', bad: twin(bank().replace('capacity tellers', 'capacity 2.5')), good: twin(bank().replace('capacity tellers', 'capacity 2')) },
        { name: 'a zero capacity through a parameter', bad: twin(bank({ params: 'param tellers = 0' })), good: twin(bank({ params: 'param tellers = 1' })) },
        { name: 'an experiment that sets the capacity to 0', bad: twin(bank({ experiment: 'set tellers = 0' })), good: twin(bank({ experiment: 'set tellers = 5' })) },
        { name: 'a sweep through a negative capacity', bad: twin(bank({ experiment: 'sweep tellers in [2, -1]' })), good: twin(bank({ experiment: 'sweep tellers in [2, 1]' })) },
        { name: 'a fractional swarm', bad: agent(ops().replace('count 4', 'count 2.5')), good: agent(ops()) },
        {
            name: 'an empty population',
            bad: { 'main.twin': `import "ops.agent"\ntwin City { population People of Manager count 0 }`, 'ops.agent': ops() },
            good: { 'main.twin': `import "ops.agent"\ntwin City { population People of Manager count 100 }`, 'ops.agent': ops() }
        }
    ],
    [IssueCodes.BranchProbabilitySum]: [
        { name: 'probabilities that add up to 1.1', bad: twin(bank({ serve: 'branch { prob 0.5 { } prob 0.6 { } }' })), good: twin(bank({ serve: 'branch { prob 0.1 { } prob 0.2 { } prob 0.7 { } }' })) },
        { name: 'probabilities above 1 with otherwise', bad: twin(bank({ serve: 'branch { prob 0.7 { } prob 0.7 { } otherwise { } }' })), good: twin(bank({ serve: 'branch { prob 0.3 { } otherwise { } }' })) }
    ],
    [IssueCodes.MixedBranchArms]: [
        { name: 'prob and when in one branch', bad: twin(bank({ serve: 'branch { prob 0.5 { } when tellers > 2 { } }' })), good: twin(bank({ serve: 'branch { when tellers > 2 { } otherwise { } }' })) },
        { name: 'otherwise before another arm', bad: twin(bank({ serve: 'branch { otherwise { } when tellers > 2 { } }' })), good: twin(bank({ serve: 'branch { when tellers > 2 { } otherwise { } }' })) }
    ],
    [IssueCodes.InvalidExperimentSetting]: [
        { name: 'zero replications', bad: twin(bank({ experiment: 'replications 0' })), good: twin(bank({ experiment: 'replications 1' })) },
        { name: 'a negative seed', bad: twin(bank({ experiment: 'seed -1' })), good: twin(bank({ experiment: 'seed 0' })) },
        { name: 'a zero horizon', bad: twin(bank({ experiment: 'horizon 0 h' })), good: twin(bank({ experiment: 'horizon 1 h' })) },
        { name: 'a warm-up as long as the horizon', bad: twin(bank({ experiment: 'horizon 1 h  warmup 60 min' })), good: twin(bank({ experiment: 'horizon 1 h  warmup 59 min' })) }
    ],
    [IssueCodes.DuplicateSetting]: [
        { name: 'two horizons', bad: twin(bank({ experiment: 'horizon 8 h  horizon 4 h' })), good: twin(bank({ experiment: 'horizon 8 h  warmup 4 h' })) },
        { name: 'a parameter set and swept', bad: twin(bank({ experiment: 'set tellers = 3  sweep tellers in [3, 4]' })), good: twin(bank({ experiment: 'set serviceMean = 3 min  sweep tellers in [3, 4]' })) },
        { name: 'two files of a model', bad: agent(ops({ members: 'model M { batch 1  batch 2 }' })), good: agent(ops({ members: 'model M { batch 1  cache 2 }' })), allow: [IssueCodes.ModelWithoutFile] }
    ],
    [IssueCodes.UnreleasedResource]: [
        { name: 'a seize without a release', bad: twin(bank({ serve: 'seize Teller\n delay 1 min' })), good: twin(bank()) },
        { name: 'a release on only one branch arm', bad: twin(bank({ serve: 'seize Teller\n branch { prob 0.5 { release Teller } prob 0.5 { delay 1 min } }' })), good: twin(bank({ serve: 'seize Teller\n branch { prob 0.5 { release Teller } prob 0.5 { release Teller } }' })) },
        { name: 'a dispose while holding', bad: twin(bank({ serve: 'seize Teller\n dispose' })), good: twin(bank({ serve: 'seize Teller\n release Teller\n dispose' })) },
        {
            name: 'a route to a process that does not release',
            bad: twin(bank({ serve: 'seize Teller\n route to Pay', members: 'process Pay for Customer { delay 1 min }' })),
            good: twin(bank({ serve: 'seize Teller\n route to Pay', members: 'process Pay for Customer { delay 1 min  release Teller }' }))
        }
    ],
    [IssueCodes.ReleaseWithoutSeize]: [
        { name: 'a release with nothing held', bad: twin(bank({ serve: 'delay 1 min\n release Teller' })), good: twin(bank()) },
        { name: 'a release after a when-branch that may not seize', bad: twin(bank({ serve: 'branch { when tellers > 2 { seize Teller } }\n release Teller' })), good: twin(bank({ serve: 'branch { when tellers > 2 { seize Teller } otherwise { seize Teller } }\n release Teller' })) }
    ],
    [IssueCodes.UnreachableProcess]: [
        { name: 'a process no source or route reaches', bad: twin(bank({ members: 'process Lost for Customer { delay 1 min }' })), good: twin(bank({ serve: 'seize Teller\n release Teller\n route to Pay', members: 'process Pay for Customer { delay 1 min }' })) }
    ],
    [IssueCodes.EntityMismatch]: [
        { name: 'a source of another entity', bad: twin(bank({ members: 'entity Truck' }).replace('creates Customer', 'creates Truck')), good: twin(bank({ members: 'entity Truck' })) },
        {
            name: 'a route to a process for another entity',
            bad: twin(bank({ serve: 'route to Load', members: 'entity Truck  process Load for Truck { delay 1 min }' })),
            good: twin(bank({ serve: 'route to Load', members: 'entity Truck  process Load for Customer { delay 1 min }' }))
        }
    ],
    [IssueCodes.NotAssignable]: [
        { name: 'an assignment to a parameter', bad: twin(bank({ serve: 'assign tellers = 4' })), good: twin(bank({ serve: 'assign patience = 4 min' })) },
        { name: 'an assignment to an auxiliary', bad: twin(bank({ members: 'stock S = 10  aux a = 2', serve: 'assign a += 1' })), good: twin(bank({ members: 'stock S = 10  aux a = 2', serve: 'assign S += 1' })) },
        { name: 'a set of a let value', bad: agent(ops({ agent: 'every 1 min { let x = 1  set x = 2 }' })), good: agent(ops({ agent: 'every 1 min { let x = 1  set open = x }' })) }
    ],
    [IssueCodes.FlowEndNotStock]: [
        { name: 'a flow from a parameter', bad: twin(bank({ members: 'stock S = 100  flow f from tellers to S rate 1' })), good: twin(bank({ members: 'stock S = 100  stock R = 0  flow f from S to R rate 0.1 * S' })) }
    ],
    [IssueCodes.FlowWithoutEnds]: [
        { name: 'a flow with neither end', bad: twin(bank({ members: 'stock S = 100  flow f rate 1' })), good: twin(bank({ members: 'stock S = 100  flow f to S rate 1' })) }
    ],
    [IssueCodes.UnknownParameter]: [
        { name: 'a set of an unknown parameter', bad: twin(bank({ experiment: 'set tellrs = 4' })), good: twin(bank({ experiment: 'set tellers = 4' })) },
        { name: 'a sweep of an unknown parameter', bad: twin(bank({ experiment: 'sweep clerks in [1, 2]' })), good: twin(bank({ experiment: 'sweep tellers in [1, 2]' })) }
    ],
    [IssueCodes.UnknownChannel]: [
        { name: 'a send on an unknown channel', bad: agent(ops({ agent: 'every 1 min { send Alert { level: 1, note: "x" } }' })), good: agent(ops()) },
        { name: 'a behaviour on an unknown channel', bad: agent(ops({ agent: 'on Alrts { set open = 1 }' })), good: agent(ops({ agent: 'on Alerts { set open = 1 }' })) }
    ],
    [IssueCodes.UnknownMessageField]: [
        { name: 'a send with an unknown field', bad: agent(ops({ agent: 'every 1 min { send Alerts { level: 1, note: "x", urgent: true } }' })), good: agent(ops()) },
        { name: 'a read of an unknown field', bad: agent(ops({ agent: 'on Alerts as msg { set open = msg.levl }' })), good: agent(ops({ agent: 'on Alerts as msg { set open = msg.level }' })) }
    ],
    [IssueCodes.MissingMessageField]: [
        { name: 'a send without a field', bad: agent(ops({ agent: 'every 1 min { send Alerts { level: 1 } }' })), good: agent(ops({ agent: 'every 1 min { send Alerts { note: "n", level: 1 } }' })) }
    ],
    [IssueCodes.DecisionWithoutOptions]: [
        { name: 'a decision without options', bad: agent(ops({ decision: 'decision Pick { criterion cost weight 1 }' })), good: agent(ops()) },
        { name: 'a decision without criteria', bad: agent(ops({ decision: 'decision Pick { option A { } }' })), good: agent(ops()) }
    ],
    [IssueCodes.MissingScore]: [
        { name: 'an option without a score for a criterion', bad: agent(ops({ decision: 'decision Pick { criterion cost weight 1  criterion speed weight 2  option A { cost: 1 } }' })), good: agent(ops()) }
    ]
};

/** Codes that validation does not raise: syntax and lexing (parsing tests), unreadable files (CLI tests). */
const NOT_RAISED_BY_VALIDATION = new Set<string>([
    IssueCodes.SyntaxError, IssueCodes.LexingError, IssueCodes.UnreadableFile
]);

const MODEL_CODES = new Set<string>([
    IssueCodes.ModelFileMissing, IssueCodes.ModelFileNotOnnx, IssueCodes.ModelWithoutFile, IssueCodes.ModelTensorUnknown,
    IssueCodes.ModelTensorTypeMismatch, IssueCodes.ModelTensorShapeMismatch, IssueCodes.ModelInputMissing
]);

describe('every diagnostic code has a case', () => {
    it('covers each code that validation raises', () => {
        const covered = new Set([...Object.keys(CASES), ...MODEL_CODES]);
        const missing = Object.values(IssueCodes).filter(c => !NOT_RAISED_BY_VALIDATION.has(c) && !covered.has(c));
        expect(missing).toEqual([]);
    });
});

for (const [code, cases] of Object.entries(CASES)) {
    describe(code, () => {
        for (const c of cases ?? []) {
            it(`raises it for ${c.name}`, async () => {
                const v = await validateFiles(c.bad);
                const file = Object.keys(c.bad)[0];
                expect(v.withCode('syntax-error', file), describeDiagnostics(v.diagnostics(file)).join('\n')).toEqual([]);
                expect(v.withCode(code, file).length, describeDiagnostics(v.diagnostics(file)).join('\n')).toBeGreaterThan(0);
                for (const d of v.withCode(code, file)) expect((d.data as { code?: string }).code).toBe(code);
            });
            it(`does not raise it for the corrected case`, async () => {
                const v = await validateFiles(c.good);
                const file = Object.keys(c.good)[0];
                expect(describeDiagnostics(errorsOf(v, file).filter(d => !c.allow?.includes(String(d.code))))).toEqual([]);
                expect(describeDiagnostics(v.withCode(code, file))).toEqual([]);
            });
        }
    });
}

// ---------------------------------------------------------------- messages and data for quick fixes

describe('messages and data', () => {
    it('suggests the nearest name for an unresolved reference', async () => {
        const v = await validateFiles(twin(bank({ serve: 'seize Tellr\n release Teller' })));
        const [d] = v.withCode(IssueCodes.UnresolvedReference);
        expect(d.message).toBe(`Unknown resource 'Tellr'. Did you mean 'Teller'?`);
        expect(d.data).toMatchObject({ code: 'unresolved-reference', suggestion: 'Teller' });
        expect(d.range.start).toEqual({ line: 7, character: 10 });
    });

    it('names the file that declares a name that is not imported', async () => {
        const v = await validateFiles({ 'exp/main.twin': 'experiment E for Shop { horizon 1 h }', 'models/shop.twin': 'twin Shop { }' });
        const [d] = v.withCode(IssueCodes.UnresolvedReference, 'exp/main.twin');
        expect(d.message).toContain(`'../models/shop.twin'`);
        expect(d.data).toMatchObject({ code: 'unresolved-reference', importPath: '../models/shop.twin' });
        const fixed = await validateFiles({ 'exp/main.twin': 'import "../models/shop.twin"\nexperiment E for Shop { horizon 1 h }', 'models/shop.twin': 'twin Shop { }' });
        expect(fixed.codes('exp/main.twin')).toEqual([]);
    });

    it('says which twin lacks a parameter', async () => {
        const v = await validateFiles(twin(bank({ experiment: 'set tellrs = 4' })));
        const [d] = v.withCode(IssueCodes.UnknownParameter);
        expect(d.message).toBe(`Bank has no parameter 'tellrs'. Did you mean 'tellers'?`);
        expect(d.data).toMatchObject({ code: 'unknown-parameter', suggestion: 'tellers' });
        expect(v.withCode(IssueCodes.UnresolvedReference)).toEqual([]);
    });

    it('suggests the channel, the field, the function and the argument', async () => {
        const a = await validateFiles(agent(ops({ agent: 'every 1 min { send Alert { level: 1, nte: "x" } }' })));
        expect(a.withCode(IssueCodes.UnknownChannel)[0].data).toMatchObject({ suggestion: 'Alerts' });
        const b = await validateFiles(agent(ops({ agent: 'every 1 min { send Alerts { level: 1, nte: "x" } }' })));
        expect(b.withCode(IssueCodes.UnknownMessageField)[0].data).toMatchObject({ suggestion: 'note' });
        expect(b.withCode(IssueCodes.MissingMessageField)[0].message).toContain(`'note'`);
        const c = await validateFiles(twin(bank({ serve: 'delay expnential(mena: 2 min)' })));
        expect(c.withCode(IssueCodes.UnknownFunction)[0].data).toMatchObject({ suggestion: 'exponential' });
        const d = await validateFiles(twin(bank({ serve: 'delay exponential(mena: 2 min)' })));
        expect(d.withCode(IssueCodes.UnknownArgument)[0].data).toMatchObject({ suggestion: 'mean' });
    });

    it('reports a mismatch once, not again as a wrong slot', async () => {
        const v = await validateFiles(twin(bank({ serve: 'delay 3 + 2 min' })));
        expect(v.codes()).toEqual([IssueCodes.UnitMismatch]);
        expect(v.withCode(IssueCodes.UnitMismatch)[0].data).toMatchObject({ suggestion: '3 min' });
    });

    it('suggests a unit for a plain count where a time is needed', async () => {
        const v = await validateFiles(twin(bank({ serve: 'delay 3' })));
        expect(v.withCode(IssueCodes.ExpectedTime)[0].data).toMatchObject({ code: 'expected-time', suggestion: '3 min' });
    });

    it('accepts a process reached through a chain of routes that releases what it received', async () => {
        const v = await validateFiles(twin(bank({
            serve: 'seize Teller\n branch { prob 0.5 { route to A } prob 0.5 { route to B } }',
            members: 'process A for Customer { delay 1 min  route to B }\n process B for Customer { release Teller }'
        })));
        expect(describeDiagnostics(v.diagnostics('main.twin'))).toEqual([]);
    });

    it('reports the seize that a routed-to process never releases, and terminates on route cycles', async () => {
        const v = await validateFiles(twin(bank({
            serve: 'seize Teller\n route to A',
            members: 'process A for Customer { branch { prob 0.5 { route to A } prob 0.5 { dispose } } }'
        })));
        const unreleased = v.withCode(IssueCodes.UnreleasedResource);
        expect(unreleased).toHaveLength(1);
        expect(unreleased[0].message).toContain(`'dispose' in process 'A'`);
        expect(unreleased[0].data).toMatchObject({ suggestion: 'release Teller' });
    });

    it('does not report a bank example twice across the files that import it', async () => {
        const v = await validateFiles({ 'main.agent': `import "bank.twin"\nsystem Ops observes Bank { agent A { every 1 h { log tellers } } }`, 'bank.twin': bank() });
        expect(describeDiagnostics(v.diagnostics('main.agent'))).toEqual([]);
        expect(describeDiagnostics(v.diagnostics('bank.twin'))).toEqual([]);
    });
});

describe('import-not-found', () => {
    it('finds an import that exists on disk but is not loaded', async () => {
        const { dir, cleanup } = tempFolder('aimatrix-import-');
        try {
            fs.writeFileSync(path.join(dir, 'lib.twin'), 'twin Lib { }');
            const services = createAiMatrixServices(NodeFileSystem);
            const ok = await validateFiles({ 'main.twin': `import "lib.twin"\n${bank()}` }, { root: dir, services });
            expect(ok.withCode(IssueCodes.ImportNotFound)).toEqual([]);
            const bad = await validateFiles({ 'other.twin': `import "nope.twin"\n${bank().replace('Bank', 'Bank2')}` }, { root: dir, services });
            expect(bad.withCode(IssueCodes.ImportNotFound)[0].message).toContain('nope.twin');
        } finally {
            cleanup();
        }
    });
});

// ---------------------------------------------------------------- models and ONNX files

describe('models against their ONNX files', () => {
    let dir: string;
    let cleanup: () => void;
    const model = (body: string) => agent(ops({ members: `model Forecast { ${body} }` }));
    const check = (files: Files) => validateFiles(files, { root: dir });

    beforeAll(() => {
        ({ dir, cleanup } = tempFolder());
        fs.mkdirSync(path.join(dir, 'models'));
        const bytes = standardModel();
        fs.writeFileSync(path.join(dir, 'models/identity.onnx'), bytes);
        fs.writeFileSync(path.join(dir, 'models/truncated.onnx'), bytes.slice(0, Math.floor(bytes.length / 2)));
        fs.writeFileSync(path.join(dir, 'models/notes.onnx'), 'This is a text file, not a model.\n');
        fs.writeFileSync(path.join(dir, 'models/weights.onnx'), identityModel(
            [{ name: 'x', type: DataType.FLOAT, shape: ['N', 4] }],
            [{ name: 'y', type: DataType.FLOAT, shape: ['N', 4] }],
            [{ name: 'w', type: DataType.FLOAT, shape: [4] }]
        ));
    });
    afterAll(() => cleanup());

    const good = 'file "models/identity.onnx"  input x: float32 [N, 4]  output y: float32 [N, 4]  providers cuda, cpu  batch 16 wait 5 ms  cache 1000 ttl 1 min';

    it('accepts a model that matches its file', async () => {
        const v = await check(model(good));
        expect(describeDiagnostics(v.diagnostics('main.agent'))).toEqual([]);
    });

    it('accepts other names for symbolic dimensions, omitted outputs and unquoted or quoted names', async () => {
        const v = await check(model('file "models/identity.onnx"  input "x": float32 [batch, 4]'));
        expect(describeDiagnostics(v.diagnostics('main.agent'))).toEqual([]);
    });

    it('does not count initializers as inputs', async () => {
        const v = await check(model('file "models/weights.onnx"  input x: float32 [N, 4]  output y: float32'));
        expect(describeDiagnostics(v.diagnostics('main.agent'))).toEqual([]);
    });

    const modelCases: [string, string, string][] = [
        [IssueCodes.ModelWithoutFile, 'input x: float32 [N, 4]', good],
        [IssueCodes.ModelFileMissing, 'file "models/missing.onnx"  input x: float32 [N, 4]', good],
        [IssueCodes.ModelFileNotOnnx, 'file "models/truncated.onnx"  input x: float32 [N, 4]', good],
        [IssueCodes.ModelFileNotOnnx, 'file "models/notes.onnx"  input x: float32 [N, 4]', good],
        [IssueCodes.ModelTensorUnknown, 'file "models/identity.onnx"  input x: float32 [N, 4]  output z: float32', good],
        [IssueCodes.ModelTensorTypeMismatch, 'file "models/identity.onnx"  input x: float64 [N, 4]', good],
        [IssueCodes.ModelTensorShapeMismatch, 'file "models/identity.onnx"  input x: float32 [N, 5]', good],
        [IssueCodes.ModelTensorShapeMismatch, 'file "models/identity.onnx"  input x: float32 [N, 4, 1]', good],
        [IssueCodes.ModelInputMissing, 'file "models/identity.onnx"  output y: float32', good]
    ];
    for (const [code, bad, fixed] of modelCases) {
        it(`raises ${code} for: ${bad}`, async () => {
            const v = await check(model(bad));
            expect(describeDiagnostics(v.diagnostics('main.agent')).filter(line => line.includes(code)).length, describeDiagnostics(v.diagnostics('main.agent')).join('\n')).toBeGreaterThan(0);
            const ok = await check(model(fixed));
            expect(ok.withCode(code, 'main.agent')).toEqual([]);
        });
    }

    it('says what the file has', async () => {
        const unknown = await check(model('file "models/identity.onnx"  input X: float32 [N, 4]'));
        const [d] = unknown.withCode(IssueCodes.ModelTensorUnknown);
        expect(d.message).toContain(`its inputs: 'x'`);
        expect(d.data).toMatchObject({ code: 'model-tensor-unknown', suggestion: 'x' });
        const type = await check(model('file "models/identity.onnx"  input x: int64 [N, 4]'));
        expect(type.withCode(IssueCodes.ModelTensorTypeMismatch)[0].data).toMatchObject({ suggestion: 'float32' });
        const shape = await check(model('file "models/identity.onnx"  input x: float32 [N, 5]'));
        expect(shape.withCode(IssueCodes.ModelTensorShapeMismatch)[0].data).toMatchObject({ suggestion: '[N, 4]' });
        const missing = await check(model('file "models/identity.onnx"'));
        expect(missing.withCode(IssueCodes.ModelInputMissing)[0].data).toMatchObject({ suggestion: 'input x: float32 [N, 4]' });
        const notOnnx = await check(model('file "models/notes.onnx"'));
        expect(notOnnx.withCode(IssueCodes.ModelFileNotOnnx)[0].message).toMatch(/not an ONNX model/);
    });

    it('reads a model file once until it changes', async () => {
        const file = path.join(dir, 'models/changing.onnx');
        fs.writeFileSync(file, standardModel());
        const services = createAiMatrixServices(NodeFileSystem);
        let reads = 0;
        services.agent.validation.AiMatrixValidator.setModelFileReader({
            stat: f => NodeModelFileReader.stat(f),
            read: f => {
                reads++;
                return NodeModelFileReader.read(f);
            }
        });
        const text = model('file "models/changing.onnx"  input x: float32 [N, 4]');
        const first = await validateFiles(text, { root: dir, services });
        expect(first.codes('main.agent')).toEqual([]);
        const again = await validateFiles({ 'again.agent': text['main.agent'].replace('system Ops', 'system Ops2') }, { root: dir, services });
        expect(again.codes('again.agent')).toEqual([]);
        expect(reads).toBe(1);
        fs.writeFileSync(file, identityModel([{ name: 'input', type: DataType.INT64, shape: [1] }], [{ name: 'y', type: DataType.FLOAT, shape: [1] }]));
        fs.utimesSync(file, new Date(), new Date(Date.now() + 10_000));
        const changed = await validateFiles({ 'third.agent': text['main.agent'].replace('system Ops', 'system Ops3') }, { root: dir, services });
        expect(reads).toBe(2);
        expect(changed.codes('third.agent')).toContain(IssueCodes.ModelTensorUnknown);
        expect(changed.codes('third.agent')).toContain(IssueCodes.ModelInputMissing);
    });
});

describe('readOnnxMetadata', () => {
    it('reads names, element types and shapes', () => {
        const meta = readOnnxMetadata(standardModel());
        expect(meta.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['N', 4], hasShape: true }]);
        expect(meta.outputs).toEqual([{ name: 'y', type: 'float32', shape: ['N', 4], hasShape: true }]);
        expect(meta.irVersion).toBe(8);
    });

    it('leaves initializers out of the inputs', () => {
        const meta = readOnnxMetadata(identityModel(
            [{ name: 'x', type: DataType.INT64, shape: [2, 'T'] }],
            [{ name: 'y', type: DataType.INT64, shape: [2, 'T'] }],
            [{ name: 'bias', type: DataType.FLOAT, shape: [2] }]
        ));
        expect(meta.inputs.map(i => [i.name, i.type, i.shape])).toEqual([['x', 'int64', [2, 'T']]]);
    });

    it('throws a clear error on bytes that are not an ONNX model', () => {
        const bytes = standardModel();
        const notModels: [string, Uint8Array][] = [
            ['empty', new Uint8Array()],
            ['truncated', bytes.slice(0, bytes.length - 7)],
            ['text', new TextEncoder().encode('hello, this is a text file\n')],
            ['json', new TextEncoder().encode('{"graph": {"input": []}}')],
            // A deterministic pseudo-random byte string (not Math.random: failures must reproduce).
            ['random', Uint8Array.from({ length: 512 }, (_, i) => (i * 2654435761 >>> 13) & 0xff)]
        ];
        for (const [name, b] of notModels) {
            expect(() => readOnnxMetadata(b), name).toThrow(/not an ONNX model/);
        }
    });
});

describe('a large twin', () => {
    it('validates a 10,000-line twin without errors', async () => {
        const lines: string[] = ['twin Big {', '  param tellers = 3', '  entity Customer'];
        let i = 0;
        while (lines.length < 9990) {
            lines.push(`  resource R${i} capacity tellers`, `  source S${i} creates Customer every exponential(mean: 1 min) into P${i}`,
                `  process P${i} for Customer {`, `    seize R${i}`, `    delay uniform(min: 1 min, max: 2 min + 3 s)`, `    release R${i}`, '  }',
                `  kpi k${i} = mean(waitTime(P${i})) in min`);
            i++;
        }
        lines.push('}');
        const v = await validateFiles({ 'big.twin': lines.join('\n') });
        expect(lines.length).toBeGreaterThanOrEqual(9990);
        expect(describeDiagnostics(v.diagnostics('big.twin'))).toEqual([]);
    });
});
