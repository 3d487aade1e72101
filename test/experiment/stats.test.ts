/**
 * Student t quantiles against published values, summaries against hand computation, and
 * the coverage of the 95% interval: with a model of known mean, about 95% of 400
 * experiments' intervals contain it (a z interval with n = 5 would cover only ~88%).
 */
import { describe, expect, it } from 'vitest';
import { normalCdf, summarize, tCdf, tQuantile } from '../../runtime/experiment/stats.js';
import { createFakeModel, stream } from './fake-model.js';

describe('tQuantile', () => {
    it.each([
        [0.975, 1, 12.7062047],
        [0.975, 2, 4.3026527],
        [0.975, 4, 2.7764451],
        [0.975, 9, 2.2621572],
        [0.975, 29, 2.0452296],
        [0.975, 120, 1.9799304],
        [0.995, 3, 5.8409093],
        [0.9, 7, 1.4149239],
        [0.975, Infinity, 1.9599640],
        [0.995, Infinity, 2.5758293]
    ])('t(%f, df=%f) = %f', (p, df, expected) => {
        expect(tQuantile(p, df)).toBeCloseTo(expected, 6);
        expect(tQuantile(1 - p, df)).toBeCloseTo(-expected, 6);
    });

    it('tends to the normal quantile as df grows, and inverts the CDF', () => {
        expect(tQuantile(0.975, 1e7)).toBeCloseTo(1.959964, 5);
        for (const df of [1, 3, 17, 250]) {
            for (const p of [0.6, 0.9, 0.975, 0.999]) expect(tCdf(tQuantile(p, df), df)).toBeCloseTo(p, 12);
        }
        expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 14);
        expect(tQuantile(0.5, 5)).toBe(0);
        expect(() => tQuantile(1, 5)).toThrow(RangeError);
        expect(() => tQuantile(0.9, 0)).toThrow(RangeError);
    });
});

describe('summarize', () => {
    it('gives mean, sample stdev, t interval, min, max, n', () => {
        const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
        expect(s.n).toBe(8);
        expect(s.mean).toBe(5);
        expect(s.stdev).toBeCloseTo(Math.sqrt(32 / 7), 12);
        const half = 2.3646243 * Math.sqrt(32 / 7) / Math.sqrt(8);
        expect(s.ci95![0]).toBeCloseTo(5 - half, 6);
        expect(s.ci95![1]).toBeCloseTo(5 + half, 6);
        expect([s.min, s.max]).toEqual([2, 4 + 5]);
    });

    it('has no spread for one value and nothing for none; NaN values are left out of n', () => {
        expect(summarize([3])).toEqual({ n: 1, mean: 3, stdev: null, ci95: null, min: 3, max: 3 });
        expect(summarize([])).toEqual({ n: 0, mean: null, stdev: null, ci95: null, min: null, max: null });
        expect(summarize([1, NaN, 3]).n).toBe(2);
    });

    it('is stable for large values close together', () => {
        const s = summarize([1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]);
        expect(s.stdev).toBeCloseTo(Math.sqrt(30), 8);
    });
});

describe('coverage of the 95% interval', () => {
    it('contains the true mean in about 95% of 400 experiments of 5 replications (normal data)', () => {
        const random = stream(2024, 0);
        const normal = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
        let covered = 0;
        for (let e = 0; e < 400; e++) {
            const s = summarize(Array.from({ length: 5 }, () => 10 + 3 * normal()));
            if (s.ci95![0] <= 10 && 10 <= s.ci95![1]) covered++;
        }
        // Binomial(400, 0.95): mean 380, sd 4.36; ±4 sd. A z interval (≈88%, 352) fails this.
        expect(covered).toBeGreaterThanOrEqual(363);
        expect(covered).toBeLessThanOrEqual(397);
    });

    it('contains the fake model\'s known mean (2 min) in about 95% of 400 experiments of 10 replications', () => {
        const model = createFakeModel({ steps: 50 });
        let covered = 0;
        for (let e = 0; e < 400; e++) {
            const values = Array.from({ length: 10 }, (_, r) => model.runReplication({ seed: e + 1, replication: r, horizon: Infinity, warmup: 0 }).kpis.value);
            const s = summarize(values);
            if (s.ci95![0] <= 2 && 2 <= s.ci95![1]) covered++;
        }
        expect(covered).toBeGreaterThanOrEqual(363);
        expect(covered).toBeLessThanOrEqual(397);
    });
});
