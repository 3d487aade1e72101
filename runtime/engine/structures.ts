/**
 * The data structures of the engine's hot loop, all over typed arrays: the event heap,
 * the queues of a resource, and the statistics monitors (observations, time-weighted
 * levels, a constant-memory quantile sketch).
 */

/**
 * Min-heap of events on (time, insertion sequence): events at the same time run in the
 * order they were scheduled, so a run is deterministic. Each event carries a kind and
 * two integer arguments.
 */
export class EventHeap {
    t: Float64Array;
    s: Float64Array;
    k: Int32Array;
    a: Int32Array;
    b: Int32Array;
    n = 0;
    private seq = 0;
    /** The event popped last. */
    topT = 0;
    topK = 0;
    topA = 0;
    topB = 0;

    constructor(capacity = 64) {
        this.t = new Float64Array(capacity);
        this.s = new Float64Array(capacity);
        this.k = new Int32Array(capacity);
        this.a = new Int32Array(capacity);
        this.b = new Int32Array(capacity);
    }

    private grow(): void {
        const cap = this.t.length * 2;
        const t = new Float64Array(cap); t.set(this.t); this.t = t;
        const s = new Float64Array(cap); s.set(this.s); this.s = s;
        const k = new Int32Array(cap); k.set(this.k); this.k = k;
        const a = new Int32Array(cap); a.set(this.a); this.a = a;
        const b = new Int32Array(cap); b.set(this.b); this.b = b;
    }

    push(time: number, kind: number, a: number, b: number): void {
        if (this.n === this.t.length) this.grow();
        const t = this.t, s = this.s, k = this.k, pa = this.a, pb = this.b;
        const seq = this.seq++;
        let i = this.n++;
        while (i > 0) {
            const j = (i - 1) >> 1;
            if (t[j] < time || (t[j] === time && s[j] < seq)) break;
            t[i] = t[j]; s[i] = s[j]; k[i] = k[j]; pa[i] = pa[j]; pb[i] = pb[j];
            i = j;
        }
        t[i] = time; s[i] = seq; k[i] = kind; pa[i] = a; pb[i] = b;
    }

    /** Removes the first event into topT/topK/topA/topB. The heap must not be empty. */
    pop(): void {
        const t = this.t, s = this.s, k = this.k, pa = this.a, pb = this.b;
        this.topT = t[0]; this.topK = k[0]; this.topA = pa[0]; this.topB = pb[0];
        const n = --this.n;
        if (n === 0) return;
        const lt = t[n], ls = s[n], lk = k[n], la = pa[n], lb = pb[n];
        let i = 0;
        for (;;) {
            let c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && (t[c + 1] < t[c] || (t[c + 1] === t[c] && s[c + 1] < s[c]))) c++;
            if (lt < t[c] || (lt === t[c] && ls < s[c])) break;
            t[i] = t[c]; s[i] = s[c]; k[i] = k[c]; pa[i] = pa[c]; pb[i] = pb[c];
            i = c;
        }
        t[i] = lt; s[i] = ls; k[i] = lk; pa[i] = la; pb[i] = lb;
    }

    peekTime(): number {
        return this.n > 0 ? this.t[0] : Infinity;
    }
}

export const FIFO = 0;
export const LIFO = 1;
export const PRIORITY = 2;

/**
 * The waiting line of a resource: entity indices in a ring buffer (FIFO), a stack (LIFO)
 * or a heap on (priority descending, arrival order) (PRIORITY: the highest value first,
 * first come first served among equals).
 */
export class EntityQueue {
    private e = new Int32Array(16);
    private p = new Float64Array(16);
    private s = new Float64Array(16);
    private head = 0;
    n = 0;
    private seq = 0;

    constructor(readonly discipline: number) {}

    private grow(): void {
        const cap = this.e.length * 2;
        const e = new Int32Array(cap), p = new Float64Array(cap), s = new Float64Array(cap);
        if (this.discipline === FIFO) {
            const mask = this.e.length - 1;
            for (let i = 0; i < this.n; i++) e[i] = this.e[(this.head + i) & mask];
            this.head = 0;
        } else {
            e.set(this.e); p.set(this.p); s.set(this.s);
        }
        this.e = e; this.p = p; this.s = s;
    }

    push(entity: number, priority: number): void {
        if (this.n === this.e.length) this.grow();
        if (this.discipline === FIFO) {
            this.e[(this.head + this.n) & (this.e.length - 1)] = entity;
            this.n++;
        } else if (this.discipline === LIFO) {
            this.e[this.n++] = entity;
        } else {
            const e = this.e, p = this.p, s = this.s, seq = this.seq++;
            let i = this.n++;
            while (i > 0) {
                const j = (i - 1) >> 1;
                if (p[j] > priority || (p[j] === priority && s[j] < seq)) break;
                e[i] = e[j]; p[i] = p[j]; s[i] = s[j];
                i = j;
            }
            e[i] = entity; p[i] = priority; s[i] = seq;
        }
    }

    peek(): number {
        if (this.discipline === FIFO) return this.e[this.head];
        if (this.discipline === LIFO) return this.e[this.n - 1];
        return this.e[0];
    }

    pop(): number {
        if (this.discipline === FIFO) {
            const x = this.e[this.head];
            this.head = (this.head + 1) & (this.e.length - 1);
            this.n--;
            return x;
        }
        if (this.discipline === LIFO) return this.e[--this.n];
        const e = this.e, p = this.p, s = this.s;
        const top = e[0];
        const n = --this.n;
        if (n > 0) {
            const le = e[n], lp = p[n], ls = s[n];
            let i = 0;
            for (;;) {
                let c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && (p[c + 1] > p[c] || (p[c + 1] === p[c] && s[c + 1] < s[c]))) c++;
                if (lp > p[c] || (lp === p[c] && ls < s[c])) break;
                e[i] = e[c]; p[i] = p[c]; s[i] = s[c];
                i = c;
            }
            e[i] = le; p[i] = lp; s[i] = ls;
        }
        return top;
    }
}

// The sketch's constants as module-level bindings: the hot add() reads them as constants
// rather than as properties of the class.
const SKETCH_GAMMA = 1.005;
const SKETCH_LN_GAMMA = Math.log(SKETCH_GAMMA);
const SKETCH_MIN = 1e-9;
const SKETCH_OFFSET = Math.ceil(Math.log(SKETCH_MIN) / SKETCH_LN_GAMMA);
const SKETCH_BUCKETS = Math.ceil(Math.log(1e13) / SKETCH_LN_GAMMA) - SKETCH_OFFSET + 1;

/** The bucket of x > SKETCH_MIN by definition (one logarithm). */
function sketchBucket(x: number): number {
    const i = Math.ceil(Math.log(x) / SKETCH_LN_GAMMA) - SKETCH_OFFSET;
    return i >= SKETCH_BUCKETS ? SKETCH_BUCKETS - 1 : i;
}

/*
 * The same bucket without a logarithm for almost every x: a table over cells of the
 * binary representation (the exponent and the 8 leading mantissa bits, a width of at
 * most 1/256 < 0.5%, so a cell holds at most one bucket boundary). A cell keeps the
 * bucket of its start and the next boundary B = e^(k·ln γ) at or above it: x < B falls
 * in the first, x > B in the next. Where x lies within a relative 1e-9 of B, or B sits
 * that close to the cell's start, or outside the table, sketchBucket decides: the
 * computed log(x)/ln γ is within ~1e-12 of its exact value while x's distance from a
 * boundary moves it by more than 1e-7, so away from a boundary both give one bucket.
 */
const CELL_SHIFT = 12; // the high word's sign, 11 exponent bits and 8 mantissa bits
const CELL_LO = 990 << 8; // 2^-33 < 1e-9
const CELL_HI = 1068 << 8; // 2^45 > 1e13
const cellBucket = new Int32Array(CELL_HI - CELL_LO);
const cellBound = new Float64Array(CELL_HI - CELL_LO);
const bits = new Float64Array(1);
const bitsHi = new Uint32Array(bits.buffer, 4, 1);
(() => {
    const little = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
    if (!little) { cellBucket.fill(-1); return; } // big-endian: every value takes sketchBucket
    const lo = new Uint32Array(bits.buffer, 0, 1);
    for (let c = 0; c < cellBucket.length; c++) {
        lo[0] = 0;
        bitsHi[0] = (CELL_LO + c) << CELL_SHIFT >>> 0;
        const a = bits[0];
        const k = Math.ceil(Math.log(a) / SKETCH_LN_GAMMA);
        const below = Math.exp((k - 1) * SKETCH_LN_GAMMA);
        const bound = Math.exp(k * SKETCH_LN_GAMMA);
        if (!(a > SKETCH_MIN) || Math.abs(a - below) <= 1e-9 * a || Math.abs(a - bound) <= 1e-9 * a
            || k - SKETCH_OFFSET + 1 >= SKETCH_BUCKETS) {
            cellBucket[c] = -1; // decided by sketchBucket
        } else {
            cellBucket[c] = k - SKETCH_OFFSET;
            cellBound[c] = bound;
        }
    }
})();

/**
 * A quantile sketch with bounded relative error (DDSketch-like): values fall into
 * logarithmic buckets of ratio 1.005 between 1e-9 and 1e13, so a percentile is within
 * 0.25% of the true value, in constant memory. Values at or below 1e-9 (zero waits)
 * count in a zero bucket. Observations may carry weights (durations for levels).
 */
export class QuantileSketch {
    private readonly counts = new Float64Array(SKETCH_BUCKETS);
    private zero = 0;
    private total = 0;

    add(x: number, w = 1): void {
        this.total += w;
        if (!(x > SKETCH_MIN)) {
            this.zero += w;
            return;
        }
        bits[0] = x;
        const c = (bitsHi[0] >>> CELL_SHIFT) - CELL_LO;
        let i = -1;
        if (c >= 0 && c < cellBucket.length) {
            const k = cellBucket[c];
            if (k >= 0) {
                const b = cellBound[c];
                const d = x - b;
                if (d < -1e-9 * b) i = k;
                else if (d > 1e-9 * b) i = k + 1;
            }
        }
        if (i < 0) i = sketchBucket(x);
        this.counts[i] += w;
    }

    reset(): void {
        this.counts.fill(0);
        this.zero = 0;
        this.total = 0;
    }

    /** The p-th percentile (p in 0..100); NaN when empty. */
    percentile(p: number): number {
        if (this.total === 0) return NaN;
        const rank = Math.min(1, Math.max(0, p / 100)) * this.total;
        let acc = this.zero;
        if (acc >= rank && this.zero > 0) return 0;
        for (let i = 0; i < this.counts.length; i++) {
            acc += this.counts[i];
            if (acc >= rank && this.counts[i] > 0) {
                const g = SKETCH_GAMMA;
                return (2 * Math.pow(g, i + SKETCH_OFFSET)) / (g + 1);
            }
        }
        return NaN;
    }
}

/** A series of observations (waits, times in system): count, mean, deviation, extremes, last, quantiles on demand. */
export class Tally {
    n = 0;
    private m = 0;
    private m2 = 0;
    min = Infinity;
    max = -Infinity;
    last = NaN;
    sketch: QuantileSketch | null = null;

    add(x: number): void {
        const n = ++this.n;
        const d = x - this.m;
        this.m += d / n;
        this.m2 += d * (x - this.m);
        if (x < this.min) this.min = x;
        if (x > this.max) this.max = x;
        this.last = x;
        if (this.sketch !== null) this.sketch.add(x);
    }

    reset(): void {
        this.n = 0; this.m = 0; this.m2 = 0; this.min = Infinity; this.max = -Infinity;
        if (this.sketch !== null) this.sketch.reset();
    }

    mean(): number { return this.n > 0 ? this.m : NaN; }
    stdev(): number { return this.n > 1 ? Math.sqrt(this.m2 / (this.n - 1)) : NaN; }
    sum(): number { return this.m * this.n; }
    final(): number { return this.last; }
    percentile(p: number): number { return this.sketch ? this.sketch.percentile(p) : NaN; }
    fraction(): number { return NaN; }
}

/**
 * A level over time (a queue length, busy units, work in progress, a stock): its
 * time-weighted mean and deviation since the last reset. Piecewise constant between
 * changes, or piecewise linear (trapezoids) for a stock that an integrator moves.
 */
export class TimeWeighted {
    value = 0;
    private lastT = 0;
    private t0 = 0;
    private area = 0;
    private area2 = 0;
    min = Infinity;
    max = -Infinity;
    sketch: QuantileSketch | null = null;

    constructor(start: number, value: number) {
        this.value = value;
        this.lastT = start;
        this.t0 = start;
        this.min = value;
        this.max = value;
    }

    /** The level changes to v at time t (piecewise constant). */
    set(t: number, v: number): void {
        const dt = t - this.lastT;
        if (dt > 0) {
            const x = this.value;
            this.area += x * dt;
            this.area2 += x * x * dt;
            if (this.sketch !== null) this.sketch.add(x, dt);
            this.lastT = t;
        }
        this.value = v;
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
    }

    /** The level moved linearly to v by time t (an integration step). */
    ramp(t: number, v: number): void {
        const dt = t - this.lastT;
        if (dt > 0) {
            const x = this.value;
            this.area += (x + v) * 0.5 * dt;
            this.area2 += (x * x + x * v + v * v) / 3 * dt;
            if (this.sketch !== null) this.sketch.add((x + v) * 0.5, dt);
            this.lastT = t;
        }
        this.value = v;
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
    }

    reset(t: number): void {
        this.lastT = t; this.t0 = t; this.area = 0; this.area2 = 0;
        this.min = this.value; this.max = this.value;
        if (this.sketch !== null) this.sketch.reset();
    }

    /** Closes the open interval at t (the end of the run). */
    finish(t: number): void {
        this.set(t, this.value);
    }

    mean(): number {
        const span = this.lastT - this.t0;
        return span > 0 ? this.area / span : this.value;
    }
    stdev(): number {
        const span = this.lastT - this.t0;
        if (!(span > 0)) return 0;
        const m = this.area / span;
        return Math.sqrt(Math.max(0, this.area2 / span - m * m));
    }
    final(): number { return this.value; }
    sum(): number { return this.value; }
    percentile(p: number): number { return this.sketch ? this.sketch.percentile(p) : NaN; }
    fraction(): number { return NaN; }
}

/** A series over the agents of a population or swarm (one state variable), evaluated when asked. */
export class AgentSeries {
    constructor(private readonly values: () => ArrayLike<unknown>) {}
    private static num(v: unknown): number {
        return typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
    }
    sum(): number {
        const x = this.values();
        let s = 0;
        for (let i = 0; i < x.length; i++) s += AgentSeries.num(x[i]);
        return s;
    }
    mean(): number { const n = this.values().length; return n ? this.sum() / n : NaN; }
    stdev(): number {
        const x = this.values();
        if (x.length < 2) return NaN;
        const m = this.mean();
        let s = 0;
        for (let i = 0; i < x.length; i++) s += (AgentSeries.num(x[i]) - m) ** 2;
        return Math.sqrt(s / (x.length - 1));
    }
    fraction(): number {
        const x = this.values();
        let k = 0;
        for (let i = 0; i < x.length; i++) if (AgentSeries.num(x[i]) !== 0) k++;
        return x.length ? k / x.length : NaN;
    }
    final(): number { return this.mean(); }
    percentile(p: number): number {
        const x = Array.from(this.values(), AgentSeries.num).sort((a, b) => a - b);
        if (x.length === 0) return NaN;
        const i = Math.min(x.length - 1, Math.max(0, Math.ceil((p / 100) * x.length) - 1));
        return x[i];
    }
}

export type Series = Tally | TimeWeighted | AgentSeries;
