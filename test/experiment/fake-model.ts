/**
 * A small real model for the experiment tests, independent of the DSL engine: each event
 * samples an exponential service time (mean `mean` seconds) from a stream seeded by (seed,
 * replication), and the KPI `value` is their average, in minutes. Its true mean is known
 * (mean / 60), so statistics and determinism can be checked; it stops when asked, fails on
 * request with a SimulationError, and records a trace of every kind of record.
 */
import { SimulationError, type CompiledModel, type ReplicationResult, type ReplicationSpec } from '../../runtime/engine/api.js';

export interface FakeSource {
    /** Events per replication. */
    readonly steps?: number;
}

/** A 32-bit mixing of two integers (splitmix-like), then mulberry32. */
export function stream(seed: number, replication: number): () => number {
    let s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(replication + 0x632be5ab, 0xc2b2ae35)) >>> 0;
    return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

export function createFakeModel(source: FakeSource = {}): CompiledModel {
    const loc = { file: 'fake.twin', line: 1, column: 1 };
    return {
        twin: 'Fake',
        params: [
            { name: 'mean', value: 120, kind: 'time', loc },
            { name: 'failReplication', value: -1, kind: 'count', loc },
            { name: 'steps', value: source.steps ?? 2000, kind: 'count', loc }
        ],
        kpis: [
            { name: 'value', unit: 'min', loc },
            { name: 'count', unit: undefined, loc }
        ],
        runReplication(spec: ReplicationSpec): ReplicationResult {
            const o = spec.overrides ?? {};
            const mean = Number(o.mean ?? 120);
            const fail = Number(o.failReplication ?? -1);
            const steps = Number(o.steps ?? source.steps ?? 2000);
            /** At this step, a record larger than a trace block (600 KB of log text). */
            const bigAt = Number(o.bigRecordAt ?? -1);
            const random = stream(spec.seed, spec.replication);
            const trace = spec.trace?.enabled ? spec.trace : undefined;
            const wall = spec.wallClock ?? (() => 0);
            let t = 0;
            let sum = 0;
            let n = 0;
            for (let i = 0; i < steps && t < spec.horizon; i++) {
                const service = -mean * Math.log(1 - random());
                if (trace) {
                    const w = wall();
                    trace.record({ kind: 'span', id: 2 * i + 1, name: 'Job', cat: 'entity', start: t, end: t + service, wallStart: w, wallEnd: w + 1, subject: `Job#${i}` });
                    trace.record({ kind: 'span', id: 2 * i + 2, parent: 2 * i + 1, name: 'delay', cat: 'step', start: t, end: t + service, wallStart: w, wallEnd: w + 1, subject: `Job#${i}`, loc: { file: 'fake.twin', line: 4, column: 3 } });
                    trace.record({ kind: 'counter', name: 'Server.busy', t, wall: w, value: i % 2 });
                    if (i % 10 === 0) {
                        trace.record({ kind: 'message', id: 1_000_000 + i, phase: 'send', channel: 'orders', from: 'Planner#0', to: 'Worker#1', t, wall: w, payload: { qty: i } });
                        trace.record({ kind: 'message', id: 2_000_000 + i, phase: 'receive', channel: 'orders', from: 'Planner#0', to: 'Worker#1', link: 1_000_000 + i, t: t + 1, wall: w + 1 });
                        trace.record({ kind: 'decision', id: 3_000_000 + i, decision: 'pick', agent: 'Planner#0', t, wall: w, chosen: 'a', scores: [{ option: 'a', score: 0.7, criteria: { cost: 0.7 } }], weights: { cost: 1 } });
                        trace.record({ kind: 'instant', name: 'log', t, wall: w, subject: 'Planner#0', attrs: { text: `step ${i}` } });
                    }
                }
                if (trace && i === bigAt) trace.record({ kind: 'instant', name: 'log', t, wall: wall(), attrs: { text: 'x'.repeat(600_000) } });
                t += service;
                sum += service;
                n++;
                if (spec.replication === fail && i === 10) {
                    throw new SimulationError(`negative delay -${(service / 60).toFixed(2)} min`, { file: 'fake.twin', line: 11, column: 5 }, t, `Job#${i}`);
                }
                if (n % 500 === 0) {
                    spec.onProgress?.(t, n);
                    if (spec.shouldStop?.()) return { status: 'stopped', kpis: { value: sum / n / 60, count: n }, events: n, simTime: t, entities: n };
                }
            }
            return { status: 'completed', kpis: { value: n > 0 ? sum / n / 60 : NaN, count: n }, events: n, simTime: t, entities: n };
        }
    };
}
