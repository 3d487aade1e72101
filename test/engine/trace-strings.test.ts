/**
 * The strings of a traced run are flat one-byte strings even when the model's source has
 * characters above U+00FF (here a `λ` and a `μ` in comments). V8 keeps such a source as a
 * two-byte string and every name cut out of it is two-byte too. Two places care, now that the
 * stored trace is binary:
 * - what the engine hands its encoder: names to intern, and the non-hot records it writes as
 *   JSON (agents, messages, decisions); a two-byte string makes JSON.stringify build the whole
 *   text two-byte, about 1.4 times slower to stringify and encode (it made the JSON Lines writer
 *   15 times slower, when every record was stringified);
 * - what the decoder gives back, which the server joins into its frames (a two-byte part turns
 *   the whole join two-byte, the slow case above): strings from UTF-8 are one-byte when ASCII.
 * The representation is read through v8.serialize (tag `"` for a one-byte string, `c` for a
 * two-byte one), so this fails when a trace site goes back to the model's own strings. The
 * values themselves must not change.
 */
import * as v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { BLOCK_HEAD, TraceDecoder, TraceEncoder } from '../../runtime/trace/binary.js';
import { compile } from './helpers.js';

const ONE_BYTE = 0x22;

/** True when V8 holds the string as one-byte (its v8.serialize tag after the 2-byte header). */
function isOneByte(s: string): boolean {
    return v8.serialize(s)[2] === ONE_BYTE;
}

/** Every string in a record, with where it is. */
function strings(value: unknown, at: string, out: Array<[string, string]>): void {
    if (typeof value === 'string') out.push([at, value]);
    else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${at}[${i}]`, out));
    else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) strings(v, `${at}.${k}`, out);
}

const bank = `// λ = 2.7 per min, μ = 1 per min
twin Bank {
  param serviceMean = 1 min
  resource Teller capacity 2 queue fifo
  entity Customer
  stock Served = 0
  source Arrivals creates Customer every exponential(rate: 2.7 per min) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: serviceMean)
    release Teller
  }
  kpi wait = mean(waitTime(Serve)) in min
}`;

const shopTwin = `import "shop.agent"
// λ: one order an hour
twin Shop {
  stock Cash = 0
  population Owners of Owner count 1
  kpi cash = final(level(Cash))
}`;
const shopAgents = `import "shop.twin"
// μ: every clerk hears the orders
system Trade observes Shop {
  channel Order { qty: number }
  agent Owner {
    every 1 h {
      send Order { qty: 2 }
      log "ordered"
    }
  }
  agent Clerk {
    on Order as o {
      set Cash += o.qty
    }
  }
  swarm Clerks of Clerk count 2
  coordinator Desk over Clerks strategy leader heartbeat 2 h
}`;

/** An encoder that notes every string the engine hands it, where the engine wrote it. */
class NotingEncoder extends TraceEncoder {
    readonly given: Array<[string, string]> = [];

    override intern(str: string): number {
        this.given.push(['intern', str]);
        return super.intern(str);
    }

    override record(r: TraceRecord): void {
        strings(r, `record(${r.kind})`, this.given);
        super.record(r);
    }
}

/** A traced replication: what the engine gave the encoder, the decoded records and the JSON the server would send of each block. */
function traced(run: (trace: TraceEncoder) => void): { given: Array<[string, string]>; records: TraceRecord[]; texts: string[] } {
    const records: TraceRecord[] = [];
    const texts: string[] = [];
    const decoder = new TraceDecoder();
    const jsonDecoder = new TraceDecoder();
    const encoder = new NotingEncoder({
        enabled: true, blocks: true,
        block: bytes => {
            decoder.decode(bytes.subarray(BLOCK_HEAD), r => { records.push(r); });
            texts.push(jsonDecoder.json(bytes.subarray(BLOCK_HEAD)).text);
        }
    });
    run(encoder);
    encoder.flush();
    return { given: encoder.given, records, texts };
}

/** The two-byte strings of a traced run: given to the encoder, in the decoded records, in the JSON texts. */
function twoByte(run: { given: Array<[string, string]>; records: readonly TraceRecord[]; texts: readonly string[] }): string[] {
    const found: string[] = [];
    for (const [at, s] of run.given) if (!isOneByte(s)) found.push(`given to ${at}: ${JSON.stringify(s)}`);
    run.records.forEach((r, i) => {
        const all: Array<[string, string]> = [];
        strings(r, `#${i}`, all);
        for (const [at, s] of all) if (!isOneByte(s)) found.push(`decoded ${at} = ${JSON.stringify(s)}`);
    });
    run.texts.forEach((t, i) => { if (!isOneByte(t)) found.push(`the JSON of block ${i}`); });
    return found;
}

describe('trace strings', () => {
    it('the check itself tells a two-byte slice of a source with a λ from a one-byte string', () => {
        const source = '// λ\nCustomer';
        const sliced = source.slice(source.indexOf('C'));
        expect(sliced).toBe('Customer');
        expect(isOneByte(sliced)).toBe(false);
        expect(isOneByte('Customer')).toBe(true);
    });

    it('process, resource, entity and site names are one-byte, given to the encoder and decoded, for a source with a λ', async () => {
        const m = await compile(bank);
        const run = traced(trace => m.runReplication({ seed: 3, replication: 0, horizon: 2 * 3600, warmup: 0, trace }));
        const records = run.records;
        const kinds = new Set(records.map(r => (r.kind === 'span' ? `span:${r.cat}` : r.kind)));
        expect([...kinds].sort()).toEqual(['counter', 'span:entity', 'span:queue', 'span:step']);
        // The values are the model's names, as before.
        const names = new Set(records.map(r => ('name' in r ? r.name : '')));
        expect(names).toEqual(new Set(['Teller.busy', 'Teller.queue', 'queue Teller', 'delay', 'Customer']));
        const step = records.find(r => r.kind === 'span' && r.cat === 'step');
        expect(step).toMatchObject({ subject: 'Customer#1', loc: { file: expect.any(String), line: 10, column: 5 } });
        expect(run.given.length).toBeGreaterThan(0);
        expect(twoByte(run)).toEqual([]);
    });

    it('agent, channel, coordinator and log strings are one-byte too', async () => {
        const m = await compile({ 'shop.twin': shopTwin, 'shop.agent': shopAgents });
        const run = traced(trace => m.runReplication({ seed: 1, replication: 0, horizon: 4 * 3600, warmup: 0, trace }));
        const records = run.records;
        const receive = records.find(r => r.kind === 'message' && r.phase === 'receive');
        expect(receive).toMatchObject({ channel: 'Order', from: 'Owner#1', to: 'Clerk#1' });
        expect(records.some(r => r.kind === 'span' && r.cat === 'agent' && r.name === 'on Order' && r.subject === 'Clerk#1')).toBe(true);
        expect(records.some(r => r.kind === 'instant' && r.name === 'heartbeat' && r.subject === 'Desk')).toBe(true);
        expect(records.some(r => r.kind === 'instant' && r.name === 'log' && r.loc !== undefined)).toBe(true);
        expect(run.given.length).toBeGreaterThan(0);
        expect(twoByte(run)).toEqual([]);
    });
});
