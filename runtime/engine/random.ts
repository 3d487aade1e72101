/**
 * Seeded, splittable random numbers.
 *
 * Every stream of a run is identified by (experiment seed, replication index, stream
 * name). The three are hashed with SplitMix64 (a 64-bit mixer with full avalanche) into
 * a 128-bit state for xoshiro128** (Blackman & Vigna), a small, fast generator that
 * passes BigCrush and works on 32-bit integers (so it needs no BigInt in the hot loop).
 * Streams are independent by construction: a stream's draws depend only on its own
 * triple, never on which other streams exist or on the order they were created, so a
 * replication gives the same numbers in any worker and adding a distribution elsewhere
 * in the model does not change this one's draws.
 *
 * Doubles have 53 random bits (two 32-bit outputs per draw), in [0, 1).
 */

/** What a sampler needs from a stream: uniform numbers in [0, 1). */
export interface Uniform {
    next(): number;
}

const MASK64 = (1n << 64n) - 1n;

function splitmix64(x: bigint): bigint {
    let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
}

/** FNV-1a, 64-bit, over the UTF-16 code units of a name. */
function fnv1a64(s: string): bigint {
    let h = 0xcbf29ce484222325n;
    for (let i = 0; i < s.length; i++) {
        h ^= BigInt(s.charCodeAt(i));
        h = (h * 0x100000001b3n) & MASK64;
    }
    return h;
}

/** The 128-bit state (four 32-bit words) of stream `name` of replication `replication` under `seed`. */
export function streamState(seed: number, replication: number, name: string): [number, number, number, number] {
    const s = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
    const r = BigInt.asUintN(64, BigInt(Math.trunc(replication)));
    let x = splitmix64(splitmix64(s) ^ splitmix64(r + 0x632be59bd9b4e019n) ^ fnv1a64(name));
    const a = splitmix64(x);
    x = (x + 0x9e3779b97f4a7c15n) & MASK64;
    const b = splitmix64(x);
    const words: [number, number, number, number] = [
        Number(a & 0xffffffffn) | 0, Number(a >> 32n) | 0, Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0
    ];
    if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1; // the all-zero state is the one fixed point
    return words;
}

/**
 * xoshiro128** over 32-bit words. The state lives in an Int32Array: a word that does not
 * fit a small integer would otherwise be a boxed number in an object field, re-boxed on
 * every step.
 */
export class Xoshiro128 implements Uniform {
    private readonly s = new Int32Array(4);

    constructor(state: readonly [number, number, number, number]) {
        this.s[0] = state[0] | 0;
        this.s[1] = state[1] | 0;
        this.s[2] = state[2] | 0;
        this.s[3] = state[3] | 0;
    }

    static of(seed: number, replication: number, name: string): Xoshiro128 {
        return new Xoshiro128(streamState(seed, replication, name));
    }

    /** The next 32-bit output, unsigned. */
    nextUint32(): number {
        const st = this.s;
        let s0 = st[0], s2 = st[2], s3 = st[3];
        const s1 = st[1];
        const m = Math.imul(s1, 5);
        const result = Math.imul((m << 7) | (m >>> 25), 9);
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        st[1] = s1 ^ s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = (s3 << 11) | (s3 >>> 21);
        st[0] = s0; st[2] = s2; st[3] = s3;
        return result >>> 0;
    }

    next(): number {
        const hi = this.nextUint32() >>> 5;  // 27 bits
        const lo = this.nextUint32() >>> 6;  // 26 bits
        return (hi * 67108864 + lo) * 1.1102230246251565e-16; // × 2^-53, exact like ÷ 2^53
    }
}

/** mulberry32, as in the peer benchmarks (`../shared/bench/peers/mmc_common.cjs`): used only to cross-check with them. */
export class Mulberry32 implements Uniform {
    private a: number;
    constructor(seed: number) {
        this.a = seed | 0;
    }
    next(): number {
        this.a = (this.a + 0x6d2b79f5) | 0;
        let t = Math.imul(this.a ^ (this.a >>> 15), this.a | 1);
        t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
}

// ------------------------------------------------------------------ samplers

export function sampleExponentialMean(r: Uniform, mean: number): number {
    return -Math.log(1 - r.next()) * mean;
}

export function sampleExponentialRate(r: Uniform, rate: number): number {
    return -Math.log(1 - r.next()) / rate;
}

export function sampleUniform(r: Uniform, min: number, max: number): number {
    return min + (max - min) * r.next();
}

/** Box–Muller, one value per pair of draws (no cached second value, so a stream has no hidden state). */
export function sampleStandardNormal(r: Uniform): number {
    const u1 = 1 - r.next();
    const u2 = r.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

export function sampleNormal(r: Uniform, mean: number, sd: number): number {
    return mean + sd * sampleStandardNormal(r);
}

export function sampleTriangular(r: Uniform, min: number, mode: number, max: number): number {
    const u = r.next();
    const span = max - min;
    if (span <= 0) return min;
    const f = (mode - min) / span;
    return u < f ? min + Math.sqrt(u * span * (mode - min)) : max - Math.sqrt((1 - u) * span * (max - mode));
}

/** Log-normal with the given mean and standard deviation of the value itself. */
export function sampleLognormal(r: Uniform, mean: number, sd: number): number {
    const s2 = Math.log(1 + (sd * sd) / (mean * mean));
    const mu = Math.log(mean) - s2 / 2;
    return Math.exp(mu + Math.sqrt(s2) * sampleStandardNormal(r));
}

function lgamma(x: number): number {
    // Lanczos approximation (g = 7, n = 9), |error| < 1e-13 for x > 0.
    const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
        -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
    if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
    x -= 1;
    let a = c[0];
    const t = x + 7.5;
    for (let i = 1; i < 9; i++) a += c[i] / (x + i);
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Poisson: multiplication of uniforms below a mean of 30, Hörmann's PTRS rejection above. */
export function samplePoisson(r: Uniform, mean: number): number {
    if (!(mean > 0)) return 0;
    if (mean < 30) {
        const limit = Math.exp(-mean);
        let k = 0;
        let p = r.next();
        while (p > limit) {
            k++;
            p *= r.next();
        }
        return k;
    }
    const slam = Math.sqrt(mean);
    const loglam = Math.log(mean);
    const b = 0.931 + 2.53 * slam;
    const a = -0.059 + 0.02483 * b;
    const invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        const u = r.next() - 0.5;
        const v = r.next();
        const us = 0.5 - Math.abs(u);
        const k = Math.floor((2 * a / us + b) * u + mean + 0.43);
        if (us >= 0.07 && v <= vr) return k;
        if (k < 0 || (us < 0.013 && v > us)) continue;
        if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - lgamma(k + 1)) return k;
    }
}

export function sampleBernoulli(r: Uniform, p: number): boolean {
    return r.next() < p;
}

/** One of `values`, with probabilities proportional to `weights` (equal when absent). */
export function sampleEmpirical<T>(r: Uniform, values: readonly T[], weights?: readonly number[]): T {
    const n = values.length;
    if (!weights) return values[Math.min(n - 1, Math.floor(r.next() * n))];
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i] ?? 0;
    let x = r.next() * total;
    for (let i = 0; i < n; i++) {
        x -= weights[i] ?? 0;
        if (x < 0) return values[i];
    }
    return values[n - 1];
}
