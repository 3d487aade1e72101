/**
 * Generators of realistic, valid models for the LSP benchmark: a twin file of any
 * length (plants with parameters, resources, entities, sources, processes with steps,
 * stocks, flows, auxiliaries, KPIs, and an experiment each), and a workspace of twin,
 * agent and experiment files that import each other.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A deterministic generator of numbers (so that every run benchmarks the same text). */
function lcg(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        return s / 2 ** 32;
    };
}

/** One production line of a plant: about 40 lines. `j` makes its names unique in the twin. */
function line(j: number, rnd: () => number): string[] {
    const mean = (1 + rnd() * 4).toFixed(1);
    const capacity = 1 + Math.floor(rnd() * 4);
    const yieldRate = (0.85 + rnd() * 0.1).toFixed(2);
    return [
        `  // line ${j}: parts arrive, are machined, inspected, and packed; stock of finished goods`,
        `  param arrivalMean${j} = ${mean} min`,
        `  param machineTime${j} = ${(Number(mean) * 0.8).toFixed(1)} min`,
        `  param machines${j} = ${capacity}`,
        `  param yield${j} = ${yieldRate}`,
        `  param drain${j} = 0.05 per h`,
        `  resource Machine${j} capacity machines${j}`,
        `  resource Inspector${j} capacity 1 queue fifo`,
        `  resource Packer${j} capacity 2`,
        `  entity Part${j} {`,
        `    attr weight = uniform(min: 1, max: 5)`,
        `    attr reworked = 0`,
        `  }`,
        `  source Arrivals${j} creates Part${j} every exponential(mean: arrivalMean${j}) into Machining${j}`,
        `  process Machining${j} for Part${j} {`,
        `    seize Machine${j}`,
        `    delay triangular(min: 0.5 * machineTime${j}, mode: machineTime${j}, max: 2 * machineTime${j})`,
        `    release Machine${j}`,
        `    seize Inspector${j}`,
        `    delay normal(mean: 30 s, sd: 5 s)`,
        `    release Inspector${j}`,
        `    branch {`,
        `      prob yield${j} { route to Packing${j} }`,
        `      prob 1 - yield${j} {`,
        `        assign reworked += 1`,
        `        route to Machining${j}`,
        `      }`,
        `    }`,
        `  }`,
        `  process Packing${j} for Part${j} {`,
        `    seize Packer${j}`,
        `    delay uniform(min: 1 min, max: 3 min)`,
        `    release Packer${j}`,
        `    dispose`,
        `  }`,
        `  stock Finished${j} = ${Math.floor(rnd() * 100)}`,
        `  flow packed${j} to Finished${j} rate 1 per min`,
        `  flow shipped${j} from Finished${j} rate drain${j} * Finished${j}`,
        `  aux cover${j} = Finished${j} / 60`,
        `  kpi wait${j} = mean(waitTime(Machining${j})) in min`,
        `  kpi busy${j} = utilization(Machine${j})`,
        `  kpi stockLevel${j} = mean(level(Finished${j}))`,
        ``
    ];
}

/** A twin with `lines` production lines, and an experiment over it. */
function plant(name: string, lines: number, seed: number): string[] {
    const rnd = lcg(seed);
    const out = [`// Plant ${name}: ${lines} production line${lines === 1 ? '' : 's'}.`, `twin ${name} {`];
    for (let j = 0; j < lines; j++) out.push(...line(j, rnd));
    out.push('  integrate euler step 1 min', '}', '');
    out.push(
        `experiment Shift${name} for ${name} {`,
        '  horizon 8 h',
        '  warmup 1 h',
        '  replications 10',
        `  seed ${seed}`,
        '  sweep machines0 in [1, 2, 3]',
        '  report wait0, busy0',
        '}',
        ''
    );
    return out;
}

/**
 * A twin file of about `targetLines` lines: plants of 10 lines each (a plant is one
 * `twin` block of ~450 lines), as a large model is split into twins in one file.
 */
export function twinFile(targetLines: number, linesPerPlant = 10): string {
    const out: string[] = [`// Generated for the LSP benchmark: about ${targetLines} lines.`, ''];
    let p = 0;
    while (out.length < targetLines) {
        const remaining = targetLines - out.length;
        const perPlant = Math.max(1, Math.min(linesPerPlant, Math.floor((remaining - 12) / 44)));
        out.push(...plant(`Plant${p}`, perPlant, p + 1));
        p++;
    }
    return out.join('\n');
}

/** An agent file that imports a plant and observes it. */
function agentFile(i: number, plantFile: string): string {
    return [
        `import "${plantFile}"`,
        '',
        `// Operators of plant ${i}: a supervisor that watches the queue and a swarm of robots.`,
        `system Operations${i} observes Plant${i} {`,
        '  channel Alert { level: int, line: number }',
        '  channel Order { quantity: number }',
        '',
        '  agent Supervisor {',
        '    state alerts = 0',
        '    state lastLevel = 0',
        '    every 5 min {',
        '      if machines0 < 2 {',
        '        send Alert { level: 1, line: 0 }',
        '      }',
        '    }',
        '    on Alert as a {',
        '      set alerts += 1',
        '      set lastLevel = a.level',
        '    }',
        '    when alerts > 10 {',
        '      log "too many alerts"',
        '    }',
        '  }',
        '',
        '  agent Robot {',
        '    state carried = 0',
        '    every 1 min {',
        '      set carried += 1',
        '      send Order { quantity: carried }',
        '    }',
        '  }',
        '',
        '  swarm Robots of Robot count 8',
        '  coordinator Dispatch over Robots strategy round-robin',
        '}',
        ''
    ].join('\n');
}

/** An experiment file that imports a plant. */
function experimentFile(i: number, plantFile: string): string {
    return [
        `import "${plantFile}"`,
        '',
        `experiment Capacity${i} for Plant${i} {`,
        '  horizon 16 h',
        '  warmup 1 h',
        '  replications 20',
        `  seed ${i + 100}`,
        '  set arrivalMean0 = 2 min',
        '  sweep machines0 from 1 to 4 step 1',
        '  report wait0, busy0, stockLevel0',
        '}',
        ''
    ].join('\n');
}

export interface WorkspaceFiles { files: string[]; lines: number }

/** A workspace of `count` files: a third plants (one line each), a third agent systems, a third experiments. */
export function writeWorkspace(root: string, count: number): WorkspaceFiles {
    fs.rmSync(root, { recursive: true, force: true });
    const plants = Math.ceil(count / 3);
    const files: string[] = [];
    let lines = 0;
    const write = (rel: string, text: string): void => {
        const file = path.join(root, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
        files.push(file);
        lines += text.split('\n').length;
    };
    for (let i = 0; i < plants && files.length < count; i++) {
        const group = `group${Math.floor(i / 50)}`;
        write(`plants/${group}/plant${i}.twin`, plant(`Plant${i}`, 1, i + 1).join('\n'));
        if (files.length < count) write(`agents/${group}/operations${i}.agent`, agentFile(i, `../../plants/${group}/plant${i}.twin`));
        if (files.length < count) write(`experiments/${group}/capacity${i}.twin`, experimentFile(i, `../../plants/${group}/plant${i}.twin`));
    }
    return { files, lines };
}
