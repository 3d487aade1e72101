/**
 * Experiment plans from real parsed models: sweeps (lists and ranges) as a cartesian
 * product, overrides in base units with units checked, the horizon from the experiment or
 * the command line, defaults, and one-line usage errors.
 */
import { EmptyFileSystem } from 'langium';
import { parseHelper } from 'langium/test';
import { describe, expect, it } from 'vitest';
import type { TwinFile } from '../../language-server/generated/ast.js';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { buildPlan, parseQuantity, PlanError, selectTarget, type PlanOptions } from '../../runtime/experiment/plan.js';

const parse = parseHelper<TwinFile>(createAiMatrixServices(EmptyFileSystem).twin);

const BANK = `
twin Bank {
  param tellers = 3
  param arrivalRate = 2.7 per min
  param serviceMean = 1 min
  param vip = false
  resource Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(rate: arrivalRate) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: serviceMean)
    release Teller
  }
  kpi wait = mean(waitTime(Serve)) in min
  kpi busy = utilization(Teller)
}
experiment Staffing for Bank {
  horizon 8 h
  warmup 30 min
  replications 30
  seed 7
  set serviceMean = 2 min
  sweep tellers in [3, 4, 5]
  sweep arrivalRate from 2 per min to 3 per min step 0.5 per min
  report wait
}
experiment Plain for Bank {
  horizon 2 d
}
`;

async function plan(text: string, options: PlanOptions = {}) {
    const document = await parse(text);
    expect(document.parseResult.parserErrors).toEqual([]);
    return buildPlan(selectTarget(document.parseResult.value, 'test.twin', options.experiment), options);
}

describe('buildPlan', () => {
    it('takes the cartesian product of the sweeps, last sweep fastest, with overrides in base units', async () => {
        const p = await plan(BANK);
        expect(p.twin).toBe('Bank');
        expect(p.experiment).toBe('Staffing');
        expect(p.points.length).toBe(9);
        expect(p.points.map(pt => [pt.set.tellers, pt.set.arrivalRate])).toEqual([
            [3, 2], [3, 2.5], [3, 3], [4, 2], [4, 2.5], [4, 3], [5, 2], [5, 2.5], [5, 3]
        ]);
        expect(Object.keys(p.points[1].overrides)).toEqual(['serviceMean', 'tellers', 'arrivalRate']);
        expect(p.points[1].overrides.serviceMean).toBe(120);
        expect(p.points[1].overrides.arrivalRate).toBeCloseTo(2.5 / 60, 15);
        expect(p.points[1].set).toEqual({ serviceMean: 2, tellers: 3, arrivalRate: 2.5 });
        expect(p.points.map(pt => pt.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
        expect([p.horizon, p.warmup, p.replications, p.seed]).toEqual([8 * 3600, 1800, 30, 7]);
        expect(p.horizonShown).toEqual({ value: 8, unit: 'h' });
        expect(p.report).toEqual(['wait']);
        expect(p.params.find(x => x.name === 'serviceMean')).toEqual({ name: 'serviceMean', default: 60, unit: 'min', factor: 60, kind: 'time' });
    });

    it('applies command-line options over the experiment, --set with units, replacing a sweep of the same parameter', async () => {
        const p = await plan(BANK, { replications: 4, seed: 99, horizon: '90min', set: ['serviceMean=3min', 'tellers=6', 'vip=true', 'arrivalRate=0.05/s'] });
        expect(p.points.length).toBe(1);
        expect(p.points[0].overrides).toEqual({ serviceMean: 180, tellers: 6, vip: true, arrivalRate: 0.05 });
        expect(p.points[0].set).toEqual({ serviceMean: 3, tellers: 6, vip: true, arrivalRate: 3 });
        expect([p.replications, p.seed, p.horizon]).toEqual([4, 99, 5400]);
        expect(p.horizonShown).toEqual({ value: 90, unit: 'min' });
    });

    it('uses the named experiment, and defaults (1 replication, seed 1) for what it does not say', async () => {
        const p = await plan(BANK, { experiment: 'Plain' });
        expect([p.experiment, p.replications, p.seed, p.warmup, p.horizon]).toEqual(['Plain', 1, 1, 0, 2 * 86400]);
        expect(p.points).toEqual([{ index: 0, set: {}, overrides: {} }]);
        expect(p.horizonShown).toEqual({ value: 2, unit: 'd' });
        expect(p.report).toBeUndefined();
    });

    it('runs a twin without experiment until it ends by itself, or asks for a horizon', async () => {
        const limited = await plan('twin T { entity E process P for E { delay 1 min } source S creates E every 1 min limit 10 into P }');
        expect(limited.experiment).toBeUndefined();
        expect(limited.horizon).toBe(Infinity);
        expect(limited.horizonShown).toEqual({ value: null, unit: 's' });
        await expect(plan('twin T { entity E process P for E { delay 1 min } source S creates E every 1 min into P }'))
            .rejects.toThrow(/does not end by itself.*--horizon 8h/);
        const withHorizon = await plan('twin T { stock x = 1 }', { horizon: '8 h' });
        expect(withHorizon.horizon).toBe(28800);
    });

    it.each([
        [{ set: ['nope=3'] }, /--set nope: Bank has no parameter 'nope' \(known: tellers, arrivalRate, serviceMean, vip\)/],
        [{ set: ['serviceMean=3'] }, /'serviceMean' is a time: give it with a time unit.*serviceMean=3min/],
        [{ set: ['tellers=3 min'] }, /'tellers' is a number: give it without a unit/],
        [{ set: ['arrivalRate=3 min'] }, /'arrivalRate' is a rate/],
        [{ set: ['vip=maybe'] }, /'vip' is true or false/],
        [{ set: ['tellers'] }, /--set expects NAME=VALUE/],
        [{ set: ['tellers=abc'] }, /'tellers' is a number, got 'abc'/],
        [{ horizon: '8' }, /--horizon expects a time with a unit/],
        [{ horizon: 'soon' }, /--horizon expects a time/],
        [{ horizon: '10 min' }, /warm-up \(1800 s\) must be ≥ 0 and shorter than the horizon/],
        [{ experiment: 'Nope' }, /no experiment 'Nope' in test\.twin \(known: Staffing, Plain\)/],
        [{ replications: 0 }, /replications must be a whole number ≥ 1/],
        [{ seed: -1 }, /seed must be a whole number ≥ 0/]
    ] as Array<[PlanOptions, RegExp]>)('rejects %j with a clear one-line error', async (options, message) => {
        const error = await plan(BANK, options).then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(PlanError);
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).not.toContain('\n');
    });

    it('rejects a bad sweep range', async () => {
        await expect(plan('twin T { param p = 1 stock x = p } experiment E for T { horizon 1 h sweep p from 5 to 1 step 1 }')).rejects.toThrow(/'to' \(1\) is below 'from' \(5\)/);
        const p = await plan('twin T { param p = 1 stock x = p } experiment E for T { horizon 1 h sweep p from 0.1 to 0.3 step 0.1 }');
        expect(p.points.map(pt => pt.set.p)).toEqual([0.1, 0.2, 0.3]);
    });
});

describe('parseQuantity', () => {
    it.each([
        ['8h', { kind: 'time', value: 28800, shown: 8, unit: 'h' }],
        ['8 h', { kind: 'time', value: 28800, shown: 8, unit: 'h' }],
        ['30min', { kind: 'time', value: 1800, shown: 30, unit: 'min' }],
        ['250ms', { kind: 'time', value: 0.25, shown: 250, unit: 'ms' }],
        ['1.5e1 s', { kind: 'time', value: 15, shown: 15, unit: 's' }],
        ['2.7 per min', { kind: 'rate', value: 2.7 / 60, shown: 2.7, unit: 'per min' }],
        ['3/h', { kind: 'rate', value: 3 / 3600, shown: 3, unit: 'per h' }],
        ['4', { kind: 'count', value: 4, shown: 4, unit: '' }]
    ])('%s', (text, expected) => {
        expect(parseQuantity(text)).toEqual(expected);
    });

    it('refuses what is not a quantity', () => {
        for (const text of ['', 'h', '8 hours', '8 h h', '1..2', 'per min']) expect(parseQuantity(text)).toBeUndefined();
    });
});
