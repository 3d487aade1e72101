/**
 * A system that observes a twin runs with it — its swarms included — even when the twin
 * has no population of its agents (docs/language.md, "Systems").
 */
import { describe, expect, it } from 'vitest';
import * as ast from '../../language-server/generated/ast.js';
import { compileTwin } from '../../runtime/engine/compile.js';
import { parseTwin, services } from './helpers.js';

const files = {
    'plant.twin': 'twin Plant {\n  stock Level = 0\n  kpi level = final(level(Level))\n}\n',
    'crew.agent': [
        'import "plant.twin"',
        'system Crew observes Plant {',
        '  agent Filler {',
        '    every 1 min { set Level += 1 }',
        '  }',
        '  swarm Fillers of Filler count 3',
        '}',
        ''
    ].join('\n')
};

describe('systems observing a twin', () => {
    it('run with the twin when the compiler is given them, and not otherwise', async () => {
        const twin = await parseTwin(files, 'Plant');
        const observers = services.shared.workspace.LangiumDocuments.all
            .map(d => d.parseResult.value)
            .filter(ast.isAgentFile)
            .flatMap(root => root.systems)
            .filter(system => system.twin?.ref === twin)
            .toArray();
        expect(observers.map(s => s.name)).toEqual(['Crew']);
        const spec = { seed: 1, replication: 0, horizon: 10 * 60 + 30, warmup: 0 };

        expect(compileTwin(twin).runReplication(spec).kpis.level).toBe(0);
        // 3 fillers, each adding 1 every minute for 10 minutes.
        expect(compileTwin(twin, { systems: observers }).runReplication(spec).kpis.level).toBe(30);
    });
});
