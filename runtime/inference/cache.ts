/**
 * A response cache for model calls: least recently used entries go first once it holds
 * `size` entries, and an entry older than `ttl` is a miss. The key is a hash of the model
 * and every input (name, element type, dimensions, bytes). The clock is injected (the
 * engine gives it simulated time, so hits and misses do not depend on the machine's speed).
 */
import { createHash } from 'node:crypto';
import type * as ort from 'onnxruntime-node';

export interface ResponseCacheOptions {
    /** Most entries kept (0: the cache is off, every lookup is a miss and nothing is stored). */
    readonly size: number;
    /** How long an entry answers, in the clock's unit; Infinity: until evicted. */
    readonly ttl: number;
    /** The current time, in the same unit as ttl. */
    readonly now: () => number;
}

interface Entry<V> {
    readonly value: V;
    readonly storedAt: number;
}

export class ResponseCache<V> {
    private readonly entries = new Map<string, Entry<V>>();
    private hitCount = 0;
    private missCount = 0;

    constructor(private readonly opts: ResponseCacheOptions) {
        if (!(opts.size >= 0)) throw new Error(`cache size must be 0 or more, not ${opts.size}`);
        if (!(opts.ttl > 0)) throw new Error(`cache time-to-live must be more than 0, not ${opts.ttl}`);
    }

    get hits(): number {
        return this.hitCount;
    }

    get misses(): number {
        return this.missCount;
    }

    /** Entries held now (expired ones included until they are looked up or evicted). */
    get size(): number {
        return this.entries.size;
    }

    get enabled(): boolean {
        return this.opts.size > 0;
    }

    /** The value stored under key and still fresh (counted as a hit), or undefined (a miss). */
    get(key: string): V | undefined {
        const entry = this.entries.get(key);
        if (entry === undefined) {
            this.missCount++;
            return undefined;
        }
        this.entries.delete(key);
        if (this.opts.now() - entry.storedAt >= this.opts.ttl) {
            this.missCount++;
            return undefined;
        }
        this.entries.set(key, entry); // most recently used goes last
        this.hitCount++;
        return entry.value;
    }

    set(key: string, value: V): void {
        if (this.opts.size === 0) return;
        this.entries.delete(key);
        this.entries.set(key, { value, storedAt: this.opts.now() });
        while (this.entries.size > this.opts.size) {
            const oldest = this.entries.keys().next().value as string;
            this.entries.delete(oldest);
        }
    }

    /** Forgets key; with `value`, only while key still holds that value (a late failure must not evict a newer answer). */
    delete(key: string, value?: V): void {
        if (value !== undefined && this.entries.get(key)?.value !== value) return;
        this.entries.delete(key);
    }

    clear(): void {
        this.entries.clear();
    }
}

/** The cache key of a call: the model and every input's name, element type, dimensions and bytes, in name order. */
export function inputKey(model: string, feeds: Readonly<Record<string, ort.Tensor>>): string {
    const hash = createHash('sha256');
    hash.update(model);
    hash.update('\0');
    for (const name of Object.keys(feeds).sort()) {
        const t = feeds[name];
        hash.update(`${name}\0${t.type}\0${t.dims.join(',')}\0`);
        const data = t.data;
        if (Array.isArray(data)) {
            for (const s of data as readonly string[]) hash.update(`${s.length}:${s}`);
        } else {
            const view = data as ArrayBufferView;
            hash.update(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        }
        hash.update('\0');
    }
    return hash.digest('base64');
}
