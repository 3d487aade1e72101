/**
 * Statistics across replications: mean, sample standard deviation, a 95% confidence
 * interval with Student's t, min, max and n.
 *
 * The t quantile is exact for any degrees of freedom: the t CDF is written through the
 * regularized incomplete beta function (a continued fraction, Lentz's method) and inverted
 * by bisection, which cannot diverge and reaches double precision in ~100 steps. Infinite
 * degrees of freedom use the normal distribution through the regularized incomplete gamma.
 */

export interface Summary {
    readonly n: number;
    /** null when n = 0. */
    readonly mean: number | null;
    /** Sample standard deviation (n − 1); null when n < 2. */
    readonly stdev: number | null;
    /** 95% confidence interval of the mean (Student t, n − 1 degrees of freedom); null when n < 2. */
    readonly ci95: readonly [number, number] | null;
    readonly min: number | null;
    readonly max: number | null;
}

/**
 * Summarizes the finite values (a KPI that had nothing to measure in a replication, NaN,
 * is left out, and n says how many counted).
 */
export function summarize(values: readonly number[], confidence = 0.95): Summary {
    const xs = values.filter(Number.isFinite);
    const n = xs.length;
    if (n === 0) return { n, mean: null, stdev: null, ci95: null, min: null, max: null };
    // Welford's update: stable when the values are large and close together.
    let mean = 0;
    let m2 = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
        const x = xs[i];
        const delta = x - mean;
        mean += delta / (i + 1);
        m2 += delta * (x - mean);
        if (x < min) min = x;
        if (x > max) max = x;
    }
    if (n < 2) return { n, mean, stdev: null, ci95: null, min, max };
    const stdev = Math.sqrt(m2 / (n - 1));
    const half = tQuantile(1 - (1 - confidence) / 2, n - 1) * stdev / Math.sqrt(n);
    return { n, mean, stdev, ci95: [mean - half, mean + half], min, max };
}

/** The p-quantile of Student's t distribution with df degrees of freedom (df = Infinity: the normal). */
export function tQuantile(p: number, df: number): number {
    if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1), got ${p}`);
    if (!(df > 0)) throw new RangeError(`degrees of freedom must be positive, got ${df}`);
    if (p === 0.5) return 0;
    if (p < 0.5) return -tQuantile(1 - p, df);
    const cdf = df === Infinity ? normalCdf : (t: number) => tCdf(t, df);
    // Bracket, then bisect: the CDF is monotone, so this always converges.
    let lo = 0;
    let hi = 1;
    while (cdf(hi) < p) {
        lo = hi;
        hi *= 2;
        if (hi > 1e300) return Infinity;
    }
    for (let i = 0; i < 200; i++) {
        const mid = (lo + hi) / 2;
        if (mid === lo || mid === hi) break;
        if (cdf(mid) < p) lo = mid; else hi = mid;
    }
    return (lo + hi) / 2;
}

/** The CDF of Student's t with df degrees of freedom. */
export function tCdf(t: number, df: number): number {
    const x = df / (df + t * t);
    const tail = 0.5 * regularizedBeta(x, df / 2, 0.5);
    return t >= 0 ? 1 - tail : tail;
}

/** The standard normal CDF: ½(1 + P(½, x²/2)) for x ≥ 0. */
export function normalCdf(x: number): number {
    const half = 0.5 * regularizedGammaP(0.5, x * x / 2);
    return x >= 0 ? 0.5 + half : 0.5 - half;
}

/** The regularized incomplete beta function I_x(a, b). */
export function regularizedBeta(x: number, a: number, b: number): number {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(x, a, b) / a;
    return 1 - front * betaContinuedFraction(1 - x, b, a) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
    const TINY = 1e-300;
    const EPS = 1e-16;
    const qab = a + b;
    const qap = a + 1;
    const qam = a - 1;
    let c = 1;
    let d = 1 - qab * x / qap;
    if (Math.abs(d) < TINY) d = TINY;
    d = 1 / d;
    let h = d;
    for (let m = 1; m <= 10000; m++) {
        const m2 = 2 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (Math.abs(d) < TINY) d = TINY;
        c = 1 + aa / c;
        if (Math.abs(c) < TINY) c = TINY;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (Math.abs(d) < TINY) d = TINY;
        c = 1 + aa / c;
        if (Math.abs(c) < TINY) c = TINY;
        d = 1 / d;
        const del = d * c;
        h *= del;
        if (Math.abs(del - 1) < EPS) break;
    }
    return h;
}

/** The regularized lower incomplete gamma function P(a, x). */
export function regularizedGammaP(a: number, x: number): number {
    if (x <= 0) return 0;
    const logFront = a * Math.log(x) - x - logGamma(a);
    if (x < a + 1) {
        // Series.
        let sum = 1 / a;
        let term = sum;
        for (let n = 1; n < 10000; n++) {
            term *= x / (a + n);
            sum += term;
            if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
        }
        return sum * Math.exp(logFront);
    }
    // Continued fraction for Q(a, x), Lentz's method.
    const TINY = 1e-300;
    let b = x + 1 - a;
    let c = 1 / TINY;
    let d = 1 / b;
    let h = d;
    for (let i = 1; i < 10000; i++) {
        const an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (Math.abs(d) < TINY) d = TINY;
        c = b + an / c;
        if (Math.abs(c) < TINY) c = TINY;
        d = 1 / d;
        const del = d * c;
        h *= del;
        if (Math.abs(del - 1) < 1e-16) break;
    }
    return 1 - Math.exp(logFront) * h;
}

const LANCZOS = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
    if (x < 0.5) {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
    }
    const z = x - 1;
    let sum = LANCZOS[0];
    for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i);
    const t = z + 7.5;
    return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}
