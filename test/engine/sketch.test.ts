/**
 * The quantile sketch places a value by a table lookup on its binary representation
 * instead of a logarithm; the bucket must be exactly the one its definition gives,
 * ceil(ln x / ln 1.005) - offset, for every value: away from bucket boundaries, right
 * next to them, at the ends of the range and beyond it.
 */
import { describe, expect, it } from 'vitest';
import { QuantileSketch } from '../../runtime/engine/structures.js';

const GAMMA = 1.005;
const LN_GAMMA = Math.log(GAMMA);
const MIN = 1e-9;
const OFFSET = Math.ceil(Math.log(MIN) / LN_GAMMA);
const BUCKETS = Math.ceil(Math.log(1e13) / LN_GAMMA) - OFFSET + 1;

/** What the sketch reports for a single value: the centre of the value's bucket, by definition. */
function expected(x: number): number {
    if (!(x > MIN)) return 0;
    const i = Math.min(Math.ceil(Math.log(x) / LN_GAMMA) - OFFSET, BUCKETS - 1);
    return (2 * Math.pow(GAMMA, i + OFFSET)) / (GAMMA + 1);
}

function reported(x: number): number {
    const sketch = new QuantileSketch();
    sketch.add(x);
    return sketch.percentile(50);
}

describe('quantile sketch buckets', () => {
    it('match the definition on values spread over the whole range (log-uniform)', () => {
        let seed = 12345;
        const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
        const mismatches: number[] = [];
        for (let n = 0; n < 100_000; n++) {
            const x = Math.exp(Math.log(1e-10) + next() * (Math.log(1e14) - Math.log(1e-10)));
            if (reported(x) !== expected(x)) mismatches.push(x);
        }
        expect(mismatches).toEqual([]);
    });

    it('match the definition next to every bucket boundary', () => {
        const mismatches: number[] = [];
        for (let k = OFFSET; k < OFFSET + BUCKETS; k += 7) {
            const boundary = Math.exp(k * LN_GAMMA);
            for (const f of [1 - 1e-6, 1 - 1e-9, 1 - 1e-12, 1, 1 + 1e-12, 1 + 1e-9, 1 + 1e-6]) {
                const x = boundary * f;
                if (reported(x) !== expected(x)) mismatches.push(x);
            }
        }
        expect(mismatches).toEqual([]);
    });

    it('handle zero, tiny, huge and non-finite values', () => {
        for (const x of [0, 1e-12, MIN, 2 ** -33, 2 ** 45, 1e13, 1e15, Number.MAX_VALUE, Infinity]) {
            expect(reported(x), String(x)).toBe(expected(x));
        }
        expect(reported(-1)).toBe(0);
    });
});
