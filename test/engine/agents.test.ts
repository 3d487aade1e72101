/**
 * Agents on the twin's clock: timers, messages (delivered at the send time, after the
 * current event), edge-triggered conditions, decisions by weighted criteria recorded
 * in the trace, a round-robin coordinator, agents changing the twin's stocks, and the
 * clear errors of running a twin whose agents call models without a model host. And:
 * every example twin compiles and runs (those with models through onnxruntime).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DecisionRecord, MessageRecord, TraceRecord } from '../../protocol/index.js';
import { createModelHost } from '../../runtime/inference/model-host.js';
import { compile } from './helpers.js';

const twin = `import "shop.agent"
twin Shop {
  param price = 10
  stock Cash = 0
  population Owners of Owner count 1
  kpi sold = sum(Owners.sold)
  kpi cash = final(level(Cash))
  kpi alarms = sum(Owners.alarms)
  kpi busiest = sum(Clerks.handled)
}`;
const agents = `import "shop.twin"
system Trade observes Shop {
  channel Order { qty: number }
  decision Supplier {
    criterion cost weight 2 minimize
    criterion speed weight 1 maximize
    option Near { cost: 5, speed: 3 }
    option Far { cost: 2, speed: 1 }
  }
  agent Owner {
    state sold = 0
    state alarms = 0
    state pick = "none"
    every 1 h {
      set pick = decide Supplier
      send Order { qty: 2 }
    }
    when Cash >= 100 {
      set alarms += 1
    }
  }
  agent Clerk {
    state handled = 0
    on Order as o {
      set handled += 1
      set Cash += o.qty * price
    }
  }
  swarm Clerks of Clerk count 3
  coordinator Desk over Clerks strategy round-robin
}`;

describe('agents', () => {
    it('run timers, deliver messages round-robin, change stocks, fire when-conditions on their edge and record decisions', async () => {
        const m = await compile({ 'shop.twin': twin, 'shop.agent': agents });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 10 * 3600, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        // 10 hourly orders of 2 at 10 each.
        expect(r.kpis.cash).toBe(200);
        expect(r.kpis.busiest).toBe(10);
        // Cash crosses 100 once (at the 5th order): one edge, one firing.
        expect(r.kpis.alarms).toBe(1);
        const receives = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'receive');
        expect(receives.map(x => x.to)).toEqual(['Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1']);
        const sends = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'send');
        expect(receives[0].link).toBe(sends[0].id);
        expect(receives[0].t).toBe(sends[0].t);
        const decisions = records.filter((x): x is DecisionRecord => x.kind === 'decision');
        expect(decisions).toHaveLength(10);
        // Scaled over the options: cost (minimize) Near 0, Far 1; speed Near 1, Far 0.
        // Near: 2·0 + 1·1 = 1; Far: 2·1 + 1·0 = 2 → Far.
        expect(decisions[0].chosen).toBe('Far');
        expect(decisions[0].scores.map(s => s.score)).toEqual([1, 2]);
        expect(decisions[0].scores[0].criteria).toEqual({ cost: 5, speed: 3 });
    });

    it('decide scales each criterion to [0, 1] over the options (min–max, flipped for minimize, 1 when all tie), weights them, ties to the first declared', async () => {
        const m = await compile({
            'd.twin': `import "d.agent"
twin D {
  population Buyers of Buyer count 1
  kpi n = sum(Buyers.n)
}`,
            'd.agent': `import "d.twin"
system Choosing observes D {
  decision Pick {
    criterion cost weight 0.5 minimize
    criterion quality weight 0.25 maximize
    criterion flat weight 0.25
    option A { cost: 10, quality: 2, flat: 7 }
    option B { cost: 20, quality: 4, flat: 7 }
    option C { cost: 30, quality: 10, flat: 7 }
  }
  decision Supplier {
    criterion cost weight 0.5 minimize
    criterion quality weight 0.3 maximize
    criterion distance weight 0.2 minimize
    option Near { cost: 12, quality: 0.9, distance: 10 }
    option Far { cost: 8, quality: 0.8, distance: 900 }
  }
  agent Buyer {
    state n = 0
    state pick = "none"
    state supplier = "none"
    every 1 h {
      set n += 1
      set pick = decide Pick
      set supplier = decide Supplier
    }
  }
}`
        });
        const records: TraceRecord[] = [];
        m.runReplication({ seed: 1, replication: 0, horizon: 3600, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        const [pick, supplier] = records.filter((x): x is DecisionRecord => x.kind === 'decision');
        // cost → A 1, B 0.5, C 0; quality → A 0, B 0.25, C 1; flat (all 7) → 1 each.
        expect(pick.scores).toEqual([
            { option: 'A', score: 0.5 * 1 + 0.25 * 0 + 0.25 * 1, criteria: { cost: 10, quality: 2, flat: 7 } },
            { option: 'B', score: 0.5 * 0.5 + 0.25 * 0.25 + 0.25 * 1, criteria: { cost: 20, quality: 4, flat: 7 } },
            { option: 'C', score: 0.5 * 0 + 0.25 * 1 + 0.25 * 1, criteria: { cost: 30, quality: 10, flat: 7 } }
        ]);
        expect(pick.scores.map(x => x.score)).toEqual([0.75, 0.5625, 0.5]);
        expect(pick.chosen).toBe('A');
        expect(pick.weights).toEqual({ cost: 0.5, quality: 0.25, flat: 0.25 });
        expect(pick.agent).toBe('Buyer#1');
        // The reference's example: Near 0.3 + 0.2, Far 0.5 — a tie, so the first declared.
        expect(supplier.scores.map(x => x.score)).toEqual([0.5, 0.5]);
        expect(supplier.chosen).toBe('Near');
    });

    const chatter = (strategy: string) => `import "c.twin"
system Chat observes C {
  channel Hello
  agent Talker {
    state heard = 0
    every 1 s {
      send Hello
    }
    on Hello {
      set heard += 1
    }
  }
  agent Host {
    state idle = true
  }
  swarm Talkers of Talker count 3
  ${strategy}
}`;
    const chatTwin = `import "c.agent"
twin C {
  // The engine finds the systems a twin runs through its populations.
  population Hosts of Host count 1
  kpi heard = sum(Talkers.heard)
}`;

    it('a message is never delivered back to its sender', async () => {
        const m = await compile({ 'c.twin': chatTwin, 'c.agent': chatter('') });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 10, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        // 10 ticks × 3 senders × 2 other members.
        expect(r.kpis.heard).toBe(60);
        const receives = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'receive');
        expect(receives).toHaveLength(60);
        expect(receives.filter(x => x.to === x.from)).toEqual([]);
    });

    it('round-robin skips the sender: the turn passes to the next member', async () => {
        const m = await compile({ 'c.twin': chatTwin, 'c.agent': chatter('coordinator Desk over Talkers strategy round-robin') });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 2, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        expect(r.kpis.heard).toBe(6);
        const receives = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'receive');
        // #1's message: the turn is #1's own, so #2 gets it; #2's goes to #3; #3's to #1.
        expect(receives.map(x => `${x.from}>${x.to!}`)).toEqual([
            'Talker#1>Talker#2', 'Talker#2>Talker#3', 'Talker#3>Talker#1',
            'Talker#1>Talker#2', 'Talker#2>Talker#3', 'Talker#3>Talker#1'
        ]);
    });

    it('leader: only the leader runs timers and conditions, every member receives messages, each heartbeat is in the trace', async () => {
        const m = await compile({
            'g.twin': `import "g.agent"
twin G {
  population Bosses of Boss count 1
  kpi ticks = sum(Guards.ticks)
  kpi fired = sum(Guards.fired)
  kpi got = sum(Guards.got)
}`,
            'g.agent': `import "g.twin"
system Guarding observes G {
  channel Order
  agent Guard {
    state ticks = 0
    state fired = 0
    state got = 0
    every 1 s {
      set ticks += 1
    }
    when ticks >= 0 {
      set fired += 1
    }
    on Order {
      set got += 1
    }
  }
  agent Boss {
    state sent = 0
    every 10 s {
      send Order
    }
  }
  swarm Guards of Guard count 3
  coordinator Captain over Guards strategy leader heartbeat 5 s
}`
        });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 30, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        // The leader's timer: 30 ticks; its condition (true from the start) fires once;
        // the followers' `when ticks >= 0` (also true) never runs; 3 orders × 3 members.
        expect(r.kpis).toEqual({ ticks: 30, fired: 1, got: 9 });
        const spans = records.filter(x => x.kind === 'span' && x.cat === 'agent');
        expect(new Set(spans.filter(x => x.kind === 'span' && (x.name === 'every' || x.name === 'when') && x.subject?.startsWith('Guard')).map(x => x.kind === 'span' ? x.subject : ''))).toEqual(new Set(['Guard#1']));
        const beats = records.filter(x => x.kind === 'instant' && x.name === 'heartbeat');
        expect(beats.map(x => (x.kind === 'instant' ? `${x.subject ?? ''}@${x.t}` : ''))).toEqual(['Captain@5', 'Captain@10', 'Captain@15', 'Captain@20', 'Captain@25', 'Captain@30']);
    });

    // Voters take turns through a shared parameter: at tick j (every second) the members
    // see turn 3j−2, 3j−1, 3j; member #1 votes at odd ticks, member #2 at even ticks.
    const voting = `import "v.twin"
system Voting observes V {
  channel Tick
  channel Alarm { level: number }
  agent Clock {
    every 1 s {
      send Tick
    }
  }
  agent Voter {
    on Tick {
      set Turn += 1
      if Turn % 6 == 1 or Turn % 6 == 5 {
        send Alarm { level: 1 + mixed * (Turn % 3) }
      }
    }
  }
  agent Listener {
    state alarms = 0
    on Alarm {
      set alarms += 1
    }
  }
  swarm Clocks of Clock count 1
  swarm Voters of Voter count 3
  coordinator Quorum over Voters strategy consensus heartbeat 4 s
}`;
    const votingTwin = `import "v.agent"
twin V {
  stock Turn = 0
  param mixed = 0
  population Listeners of Listener count 1
  kpi alarms = sum(Listeners.alarms)
}`;

    it('consensus: a message leaves when a majority of members sent it within one heartbeat interval [k·t, (k+1)·t); the votes are then spent', async () => {
        const m = await compile({ 'v.twin': votingTwin, 'v.agent': voting });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 16, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        // Votes: #1 at 1, 3, 5, …; #2 at 2, 4, 6, …. Interval [0,4): 1+2 → out at 2, 3 alone;
        // [4,8): 4+5 → 5, 6+7 → 7; [8,12): 9, 11; [12,16): 13, 15; [16,20): 16 alone.
        expect(r.kpis.alarms).toBe(7);
        const sends = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'send' && x.channel === 'Alarm');
        expect(sends.map(x => `${x.from}@${x.t}`)).toEqual(['Voter#2@2', 'Voter#1@5', 'Voter#1@7', 'Voter#1@9', 'Voter#1@11', 'Voter#1@13', 'Voter#1@15']);
        expect(records.filter(x => x.kind === 'instant' && x.name === 'heartbeat').map(x => x.kind === 'instant' ? x.t : 0)).toEqual([4, 8, 12, 16]);
    });

    it('consensus: different fields are different messages, so they never make a majority', async () => {
        const m = await compile({ 'v.twin': votingTwin, 'v.agent': voting });
        // With mixed = 1, #1 sends level 2 and #2 sends level 3.
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 16, warmup: 0, overrides: { mixed: 1 } });
        expect(r.kpis.alarms).toBe(0);
    });

    it('a twin whose agents call models says how to run it: asynchronously, with a model host', async () => {
        const dir = path.resolve(__dirname, '../../examples/warehouse');
        const m = await compile({
            'warehouse.twin': fs.readFileSync(path.join(dir, 'warehouse.twin'), 'utf8'),
            'replenishment.agent': fs.readFileSync(path.join(dir, 'replenishment.agent'), 'utf8')
        }, { root: dir });
        expect(m.usesInference).toBe(true);
        expect(m.models?.map(x => x.name)).toEqual(['DemandForecast']);
        const spec = { seed: 42, replication: 0, horizon: 2 * 86400, warmup: 0 };
        expect(() => m.runReplication(spec)).toThrow("twin 'Warehouse' has agents that call models (DemandForecast): run it with runReplicationAsync and a model host");
        await expect(m.runReplicationAsync(spec)).rejects.toThrow("twin 'Warehouse' has agents that call models: give the replication a model host (ReplicationSpec.models)");
    });
});

describe('examples', () => {
    const root = path.resolve(__dirname, '../../examples');
    const folders = fs.readdirSync(root).filter(f => fs.statSync(path.join(root, f)).isDirectory());
    for (const folder of folders) {
        const files = fs.readdirSync(path.join(root, folder)).filter(f => f.endsWith('.twin') || f.endsWith('.agent'));
        if (!files.some(f => f.endsWith('.twin'))) continue;
        it(`${folder}: every twin compiles and runs a short replication`, async () => {
            const texts = Object.fromEntries(files.map(f => [f, fs.readFileSync(path.join(root, folder, f), 'utf8')]));
            for (const f of files.filter(x => x.endsWith('.twin'))) {
                for (const name of [...texts[f].matchAll(/^twin (\w+)/gm)].map(x => x[1])) {
                    const m = await compile(texts, { twin: name, root: path.join(root, folder) });
                    const usesInference = Object.values(texts).some(t => /\binfer\s+\w+\s*\(/.test(t));
                    const spec = { seed: 1, replication: 0, horizon: 3600, warmup: 600 };
                    const run = () => m.runReplication(spec);
                    if (usesInference) {
                        expect(run).toThrow(/run it with runReplicationAsync/);
                        const host = await createModelHost(m.models ?? []);
                        const r = await m.runReplicationAsync({ ...spec, models: host });
                        expect(r.status).toBe('completed');
                        expect(Object.keys(r.kpis).length).toBe(m.kpis.length);
                        expect(host.stats().reduce((n, s) => n + s.calls, 0)).toBeGreaterThan(0);
                        await host.dispose();
                    } else {
                        const r = run();
                        expect(r.status).toBe('completed');
                        expect(Object.keys(r.kpis).length).toBe(m.kpis.length);
                    }
                }
            }
        });
    }
});
