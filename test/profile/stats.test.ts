/**
 * The profiler's statistics: percentiles by linear interpolation between order statistics
 * (numpy's default), checked against hand-computed values and, for random samples, against
 * a direct implementation of the definition; the latency summary's units and order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { percentile, SampleBuffer, summarizeLatency } from '../../runtime/profile/stats';

describe('percentile', () => {
    it('matches hand-computed values', () => {
        const a = [1, 2, 3, 4];
        expect(percentile(a, 0)).toBe(1);
        expect(percentile(a, 100)).toBe(4);
        expect(percentile(a, 50)).toBe(2.5);
        // rank = 0.95 * 3 = 2.85 → 3 + 0.85 * (4 - 3)
        expect(percentile(a, 95)).toBeCloseTo(3.85, 12);
        expect(percentile([10, 20, 30, 40, 50], 50)).toBe(30);
        // numpy.percentile(range(1, 101), 99) == 99.01
        expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBeCloseTo(99.01, 10);
        expect(percentile([7], 99)).toBe(7);
    });

    it('uses only the first `count` samples', () => {
        expect(percentile([1, 2, 3, 1000], 100, 3)).toBe(3);
    });

    it('rejects no samples and percentiles outside 0..100', () => {
        expect(() => percentile([], 50)).toThrow(RangeError);
        expect(() => percentile([1], 101)).toThrow(RangeError);
        expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
    });

    it('agrees with the definition and is monotone in p, for random samples', () => {
        fc.assert(fc.property(
            fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
            fc.double({ min: 0, max: 100, noNaN: true }),
            (values, p) => {
                const sorted = [...values].sort((x, y) => x - y);
                const h = (sorted.length - 1) * p / 100;
                const expected = sorted[Math.floor(h)] + (h - Math.floor(h)) * ((sorted[Math.ceil(h)] ?? 0) - sorted[Math.floor(h)]);
                const got = percentile(sorted, p);
                expect(got).toBeCloseTo(expected, 6);
                expect(got).toBeGreaterThanOrEqual(sorted[0]);
                expect(got).toBeLessThanOrEqual(sorted[sorted.length - 1]);
                expect(percentile(sorted, Math.min(100, p + 1))).toBeGreaterThanOrEqual(got - 1e-9);
            }
        ));
    });
});

describe('summarizeLatency', () => {
    it('turns microsecond samples into a millisecond summary without reordering them', () => {
        const samples = Float64Array.from([400, 100, 300, 200, 1000]);
        const s = summarizeLatency(samples);
        // sorted 100 200 300 400 1000; p95: rank 3.8 → 400 + 0.8 × 600; p99: rank 3.96 → 400 + 0.96 × 600
        const expected = { mean: 0.4, p50: 0.3, p95: 0.88, p99: 0.976, min: 0.1, max: 1 };
        expect(Object.keys(s).sort()).toEqual(Object.keys(expected).sort());
        for (const [k, v] of Object.entries(expected)) expect(s[k as keyof typeof s], k).toBeCloseTo(v, 12);
        expect(Array.from(samples)).toEqual([400, 100, 300, 200, 1000]);
    });

    it('summarizes a prefix and refuses an impossible count', () => {
        const s = summarizeLatency(Float64Array.from([5000, 1000, 9e9]), 2);
        expect(s.max).toBe(5);
        expect(s.mean).toBe(3);
        expect(() => summarizeLatency(new Float64Array(2), 3)).toThrow(RangeError);
        expect(() => summarizeLatency(new Float64Array(0))).toThrow(RangeError);
    });

    it('sorts numerically, not as strings', () => {
        expect(summarizeLatency(Float64Array.from([9, 10, 100])).min).toBe(0.009);
    });
});

describe('SampleBuffer', () => {
    it('grows past its capacity and keeps every sample in order', () => {
        const b = new SampleBuffer(2);
        for (let i = 0; i < 1000; i++) b.push(i);
        expect(b.length).toBe(1000);
        expect(b.values()[999]).toBe(999);
        expect(Array.from(b.values().subarray(0, 3))).toEqual([0, 1, 2]);
    });
});

describe('SampleBuffer past its bound', () => {
    it('keeps at most maxKept samples; count, mean, min and max stay exact and the percentiles close', () => {
        const b = new SampleBuffer(16, 1000);
        // 0 .. 99 999 µs in a scrambled order (a multiplicative permutation mod 100 000).
        for (let i = 0; i < 100_000; i++) b.push((i * 7919) % 100_000);
        expect(b.length).toBe(1000);
        expect(b.count).toBe(100_000);
        const s = b.summarize();
        expect(s.min).toBe(0);
        expect(s.max).toBe(99.999);
        expect(s.mean).toBeCloseTo(49.9995, 6);
        expect(Math.abs(s.p50 - 50)).toBeLessThan(5);
        expect(Math.abs(s.p95 - 95)).toBeLessThan(3);
    });

    it('summarizes exactly while every sample is kept', () => {
        const b = new SampleBuffer(2, 1000);
        for (const v of [3000, 1000, 2000]) b.push(v);
        expect(b.summarize()).toEqual(summarizeLatency(Float64Array.from([3000, 1000, 2000])));
    });
});
