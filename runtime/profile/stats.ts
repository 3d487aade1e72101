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

/** A Float64Array that grows by doubling: for timed runs of a given duration, where the count is not known ahead. */
export class SampleBuffer {
    private data: Float64Array;
    private size = 0;

    constructor(capacity = 1024) {
        this.data = new Float64Array(Math.max(1, capacity));
    }

    push(value: number): void {
        if (this.size === this.data.length) {
            const bigger = new Float64Array(this.data.length * 2);
            bigger.set(this.data);
            this.data = bigger;
        }
        this.data[this.size++] = value;
    }

    get length(): number {
        return this.size;
    }

    /** The samples recorded so far (a view, not a copy). */
    values(): Float64Array {
        return this.data.subarray(0, this.size);
    }
}
