/**
 * Latency statistics of a timed run: the samples are microseconds in a Float64Array (the
 * timing loop writes into a preallocated array and never allocates per call); the summary
 * is in milliseconds.
 *
 * Percentiles interpolate linearly between the two nearest order statistics (the
 * definition numpy and most spreadsheets use by default, "type 7"): p = 0 is the
 * minimum, p = 100 the maximum, p = 50 of an even count the mean of the middle two.
 */

export interface LatencySummary {
    readonly mean: number;
    readonly p50: number;
    readonly p95: number;
    readonly p99: number;
    readonly min: number;
    readonly max: number;
}

/** The p-th percentile (0–100) of ascending `sorted[0 .. count)`. */
export function percentile(sorted: ArrayLike<number>, p: number, count: number = sorted.length): number {
    if (count <= 0) throw new RangeError('percentile of no samples');
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not within 0..100`);
    const rank = (p / 100) * (count - 1);
    const lo = Math.floor(rank);
    const hi = Math.min(count - 1, lo + 1);
    const frac = rank - lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

/**
 * Mean, p50, p95, p99, min and max, in milliseconds, of the first `count` samples (in
 * microseconds) of `samplesUs`. Sorts a copy; the samples keep their order.
 */
export function summarizeLatency(samplesUs: Float64Array, count: number = samplesUs.length): LatencySummary {
    if (count <= 0 || count > samplesUs.length) throw new RangeError(`cannot summarize ${count} of ${samplesUs.length} samples`);
    const sorted = samplesUs.slice(0, count).sort();
    let sum = 0;
    for (let i = 0; i < count; i++) sum += sorted[i];
    const ms = (us: number): number => us / 1000;
    return {
        mean: ms(sum / count),
        p50: ms(percentile(sorted, 50, count)),
        p95: ms(percentile(sorted, 95, count)),
        p99: ms(percentile(sorted, 99, count)),
        min: ms(sorted[0]),
        max: ms(sorted[count - 1])
    };
}

/**
 * Samples kept at most (8 bytes each: 128 MB). A timed run of a fast model for a long
 * `--duration`, or a huge `--iterations`, records more calls than that; past it the buffer
 * keeps a uniform random sample of them (reservoir sampling, seeded), so memory stays
 * bounded while mean, min, max and the count stay exact and the percentiles are those of
 * 16 million samples drawn evenly from the whole run.
 */
export const MAX_KEPT_SAMPLES = 1 << 24;

/** A Float64Array that grows by doubling: for timed runs whose count is not known ahead (see MAX_KEPT_SAMPLES for the bound). */
export class SampleBuffer {
    private data: Float64Array;
    private size = 0;
    private seen = 0;
    private sum = 0;
    private lo = Infinity;
    private hi = -Infinity;
    private seed = 0x2545f491;

    constructor(capacity = 1024, private readonly maxKept = MAX_KEPT_SAMPLES) {
        this.data = new Float64Array(Math.max(1, Math.min(capacity, maxKept)));
    }

    push(value: number): void {
        this.seen++;
        this.sum += value;
        if (value < this.lo) this.lo = value;
        if (value > this.hi) this.hi = value;
        if (this.size < this.maxKept) {
            if (this.size === this.data.length) {
                const bigger = new Float64Array(Math.min(this.data.length * 2, this.maxKept));
                bigger.set(this.data);
                this.data = bigger;
            }
            this.data[this.size++] = value;
            return;
        }
        // Algorithm R: the n-th sample replaces a kept one with probability maxKept / n.
        const j = Math.floor(this.random() * this.seen);
        if (j < this.size) this.data[j] = value;
    }

    /** Samples kept (every one pushed, up to the bound). */
    get length(): number {
        return this.size;
    }

    /** Samples pushed. */
    get count(): number {
        return this.seen;
    }

    /** The samples kept (a view, not a copy). */
    values(): Float64Array {
        return this.data.subarray(0, this.size);
    }

    /** summarizeLatency of every sample pushed: exact while all are kept; past the bound, mean, min and max are still exact. */
    summarize(): LatencySummary {
        const s = summarizeLatency(this.values());
        if (this.seen === this.size) return s;
        return { ...s, mean: this.sum / this.seen / 1000, min: this.lo / 1000, max: this.hi / 1000 };
    }

    /** mulberry32: the reservoir's choices, the same on every run. */
    private random(): number {
        let t = (this.seed = (this.seed + 0x6d2b79f5) | 0);
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
}
