/**
 * The built-in functions of the expression language: distributions, statistics over
 * monitors, and math. One table serves the validator (arguments, units, parameter
 * constraints), completion (snippets), hover (documentation) and signature help,
 * and later the runtime (which implements each by name).
 */
import type { Dim } from './units.js';

export type BuiltinCategory = 'distribution' | 'monitor' | 'statistic' | 'math' | 'time';

/** What an argument must be. `same` arguments share one dimension, which is usually the result's. */
export type ArgKind =
    | 'same'            // any quantity; all `same` arguments agree
    | 'time'
    | 'count'
    | 'rate'
    | 'probability'     // a count in [0, 1]
    | 'any'
    | 'list'            // a list literal of `same` quantities
    | 'series'          // a monitored series (a KPI-able value or a swarm's state)
    | 'process' | 'resource' | 'stock' | 'swarm';

export type Constraint = 'positive' | 'nonNegative' | 'probability' | 'integer';

export interface BuiltinParam {
    readonly name: string;
    readonly kind: ArgKind;
    readonly doc: string;
    readonly optional?: boolean;
    readonly constraints?: readonly Constraint[];
}

export interface Builtin {
    readonly name: string;
    readonly category: BuiltinCategory;
    readonly doc: string;
    /** Alternative parameter lists; arguments may be named or positional. */
    readonly overloads: readonly (readonly BuiltinParam[])[];
    /** The result's dimension from the arguments' dimensions (in call order) and their names. */
    readonly result: (args: readonly Dim[], names: readonly (string | undefined)[]) => Dim;
    /** For distributions: relations between parameters that the validator checks on constants. */
    readonly relations?: readonly { readonly lower: string; readonly upper: string; readonly message: string }[];
}

const COUNT_DIM: Dim = { kind: 'quantity', time: 0 };
const TIME_DIM: Dim = { kind: 'quantity', time: 1 };
const RATE_DIM: Dim = { kind: 'quantity', time: -1 };
const BOOL_DIM: Dim = { kind: 'bool' };
const UNKNOWN_DIM: Dim = { kind: 'unknown' };

/** The dimension the `same` arguments agree on (the first known one). */
function sameResult(args: readonly Dim[]): Dim {
    for (const a of args) {
        if (a.kind === 'quantity') return a;
        if ((a.kind === 'list' || a.kind === 'series') && a.item.kind === 'quantity') return a.item;
    }
    return args.find(a => a.kind !== 'unknown' && a.kind !== 'ref') ?? UNKNOWN_DIM;
}

function p(name: string, kind: ArgKind, doc: string, extra: Partial<BuiltinParam> = {}): BuiltinParam {
    return { name, kind, doc, ...extra };
}

const positive: readonly Constraint[] = ['positive'];
const nonNegative: readonly Constraint[] = ['nonNegative'];

export const BUILTINS: readonly Builtin[] = [
    // ------------------------------------------------------------ distributions
    {
        name: 'uniform', category: 'distribution',
        doc: 'Uniform distribution between `min` and `max` (each value equally likely).',
        overloads: [[p('min', 'same', 'lowest value'), p('max', 'same', 'highest value')]],
        result: sameResult,
        relations: [{ lower: 'min', upper: 'max', message: 'min must not be greater than max' }]
    },
    {
        name: 'normal', category: 'distribution',
        doc: 'Normal (Gaussian) distribution with a `mean` and a standard deviation `sd`.',
        overloads: [[p('mean', 'same', 'mean value'), p('sd', 'same', 'standard deviation (≥ 0)', { constraints: nonNegative })]],
        result: sameResult
    },
    {
        name: 'exponential', category: 'distribution',
        doc: 'Exponential distribution, given its `mean` or its `rate` (events per time). The usual inter-arrival and service time of queueing models.',
        overloads: [
            [p('mean', 'same', 'mean value (> 0)', { constraints: positive })],
            [p('rate', 'rate', 'events per time (> 0), e.g. `30 per h`', { constraints: positive })]
        ],
        result: (args, names) => names[0] === 'rate' ? invert(args[0]) : sameResult(args)
    },
    {
        name: 'triangular', category: 'distribution',
        doc: 'Triangular distribution between `min` and `max`, most likely at `mode`.',
        overloads: [[p('min', 'same', 'lowest value'), p('mode', 'same', 'most likely value'), p('max', 'same', 'highest value')]],
        result: sameResult,
        relations: [
            { lower: 'min', upper: 'mode', message: 'min must not be greater than mode' },
            { lower: 'mode', upper: 'max', message: 'mode must not be greater than max' },
            { lower: 'min', upper: 'max', message: 'min must not be greater than max' }
        ]
    },
    {
        name: 'lognormal', category: 'distribution',
        doc: 'Log-normal distribution with the given `mean` and standard deviation `sd` of the value itself (not of its logarithm).',
        overloads: [[p('mean', 'same', 'mean value (> 0)', { constraints: positive }), p('sd', 'same', 'standard deviation (≥ 0)', { constraints: nonNegative })]],
        result: sameResult
    },
    {
        name: 'poisson', category: 'distribution',
        doc: 'Poisson distribution: a whole count with the given `mean`.',
        overloads: [[p('mean', 'count', 'mean count (> 0)', { constraints: positive })]],
        result: () => COUNT_DIM
    },
    {
        name: 'bernoulli', category: 'distribution',
        doc: 'Bernoulli distribution: true with probability `p`, false otherwise.',
        overloads: [[p('p', 'probability', 'probability of true, in [0, 1]', { constraints: ['probability'] })]],
        result: () => BOOL_DIM
    },
    {
        name: 'empirical', category: 'distribution',
        doc: 'Empirical distribution: one of `values`, drawn with the given `weights` (equal weights when omitted).',
        overloads: [[p('values', 'list', 'the possible values'), p('weights', 'list', 'relative weights (≥ 0), one per value', { optional: true })]],
        result: args => sameResult(args.slice(0, 1))
    },
    // ------------------------------------------------------------ monitors (KPIs)
    {
        name: 'waitTime', category: 'monitor',
        doc: 'Time an entity waits in the queues of a process (from arriving at a `seize` until it gets the resource), per entity.',
        overloads: [[p('process', 'process', 'the process')]],
        result: () => ({ kind: 'series', item: TIME_DIM })
    },
    {
        name: 'timeInSystem', category: 'monitor',
        doc: 'Time from an entity\'s entry into a process until it leaves it (including routed processes), per entity.',
        overloads: [[p('process', 'process', 'the process')]],
        result: () => ({ kind: 'series', item: TIME_DIM })
    },
    {
        name: 'utilization', category: 'monitor',
        doc: 'Time-average share of a resource\'s capacity in use, between 0 and 1.',
        overloads: [[p('resource', 'resource', 'the resource')]],
        result: () => COUNT_DIM
    },
    {
        name: 'queueLength', category: 'monitor',
        doc: 'Number of entities waiting for a resource (a time-weighted series).',
        overloads: [[p('resource', 'resource', 'the resource')]],
        result: () => ({ kind: 'series', item: COUNT_DIM })
    },
    {
        name: 'throughput', category: 'monitor',
        doc: 'Entities that completed a process per unit of time.',
        overloads: [[p('process', 'process', 'the process')]],
        result: () => RATE_DIM
    },
    {
        name: 'completed', category: 'monitor',
        doc: 'Number of entities that completed a process.',
        overloads: [[p('process', 'process', 'the process')]],
        result: () => COUNT_DIM
    },
    {
        name: 'wip', category: 'monitor',
        doc: 'Work in progress: entities currently inside a process (a time-weighted series).',
        overloads: [[p('process', 'process', 'the process')]],
        result: () => ({ kind: 'series', item: COUNT_DIM })
    },
    {
        name: 'level', category: 'monitor',
        doc: 'Level of a stock over time (a time-weighted series).',
        overloads: [[p('stock', 'stock', 'the stock')]],
        result: () => ({ kind: 'series', item: COUNT_DIM })
    },
    // ------------------------------------------------------------ statistics over series
    {
        name: 'mean', category: 'statistic',
        doc: 'Mean of a series (time-weighted for levels, per observation for waits).',
        overloads: [[p('of', 'series', 'the series')]],
        result: sameResult
    },
    {
        name: 'stdev', category: 'statistic',
        doc: 'Standard deviation of a series.',
        overloads: [[p('of', 'series', 'the series')]],
        result: sameResult
    },
    {
        name: 'percentile', category: 'statistic',
        doc: 'The `p`-th percentile of a series (`p` between 0 and 100).',
        overloads: [[p('of', 'series', 'the series'), p('p', 'count', 'percentile, 0 to 100')]],
        result: args => sameResult(args.slice(0, 1))
    },
    {
        name: 'final', category: 'statistic',
        doc: 'Value of a series at the end of the run.',
        overloads: [[p('of', 'series', 'the series')]],
        result: sameResult
    },
    {
        name: 'sum', category: 'statistic',
        doc: 'Sum over a swarm\'s or population\'s state (e.g. `sum(Birds.energy)`).',
        overloads: [[p('of', 'series', 'the series')]],
        result: sameResult
    },
    {
        name: 'fraction', category: 'statistic',
        doc: 'Share of the agents of a swarm or population for which a state is true (e.g. `fraction(Birds.flocking)`), between 0 and 1.',
        overloads: [[p('of', 'series', 'the series of conditions')]],
        result: () => COUNT_DIM
    },
    // ------------------------------------------------------------ math
    { name: 'min', category: 'math', doc: 'The smaller of two values.', overloads: [[p('a', 'same', 'a value'), p('b', 'same', 'a value')]], result: sameResult },
    { name: 'max', category: 'math', doc: 'The larger of two values.', overloads: [[p('a', 'same', 'a value'), p('b', 'same', 'a value')]], result: sameResult },
    { name: 'abs', category: 'math', doc: 'Absolute value.', overloads: [[p('x', 'same', 'a value')]], result: sameResult },
    { name: 'sqrt', category: 'math', doc: 'Square root of a count.', overloads: [[p('x', 'count', 'a value ≥ 0')]], result: () => COUNT_DIM },
    { name: 'exp', category: 'math', doc: 'e raised to a count.', overloads: [[p('x', 'count', 'a value')]], result: () => COUNT_DIM },
    { name: 'ln', category: 'math', doc: 'Natural logarithm of a count.', overloads: [[p('x', 'count', 'a value > 0')]], result: () => COUNT_DIM },
    { name: 'floor', category: 'math', doc: 'Largest whole number not above x.', overloads: [[p('x', 'same', 'a value')]], result: sameResult },
    { name: 'ceil', category: 'math', doc: 'Smallest whole number not below x.', overloads: [[p('x', 'same', 'a value')]], result: sameResult },
    { name: 'round', category: 'math', doc: 'Nearest whole number.', overloads: [[p('x', 'same', 'a value')]], result: sameResult },
    { name: 'random', category: 'math', doc: 'A uniform random number in [0, 1) from the caller\'s stream.', overloads: [[]], result: () => COUNT_DIM },
    // ------------------------------------------------------------ clock
    { name: 'now', category: 'time', doc: 'The current simulation time.', overloads: [[]], result: () => TIME_DIM }
];

function invert(d: Dim | undefined): Dim {
    return d && d.kind === 'quantity' ? { kind: 'quantity', time: -d.time } : UNKNOWN_DIM;
}

const byName = new Map(BUILTINS.map(b => [b.name, b]));

export function findBuiltin(name: string | undefined): Builtin | undefined {
    return name === undefined ? undefined : byName.get(name);
}

export const DISTRIBUTIONS = BUILTINS.filter(b => b.category === 'distribution');

/** A snippet that inserts a call with one placeholder per required parameter: `exponential(mean: ${1})`. */
export function builtinSnippet(b: Builtin, overload = 0): string {
    const params = (b.overloads[overload] ?? []).filter(x => !x.optional);
    const named = b.category === 'distribution';
    const inner = params.map((x, i) => named ? `${x.name}: \${${i + 1}}` : `\${${i + 1}:${x.name}}`).join(', ');
    return `${b.name}(${inner})`;
}

/** The signature as it reads in documentation: `exponential(mean) | exponential(rate)`. */
export function builtinSignatures(b: Builtin): string[] {
    return b.overloads.map(o => `${b.name}(${o.map(x => x.optional ? `${x.name}?` : x.name).join(', ')})`);
}
