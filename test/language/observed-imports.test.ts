/**
 * A twin that imports the agent file whose system observes it uses that import: it is
 * what makes the system run with the twin. Any other import it does not use is reported.
 */
import { describe, expect, it } from 'vitest';
import { validateFiles } from './helpers/validate.js';

const crew = 'import "plant.twin"\nsystem Crew observes Plant {\n  agent Filler {\n    every 1 min { set Level += 1 }\n  }\n  swarm Fillers of Filler count 3\n}\n';
const other = 'system Other {\n  channel Ping\n}\n';

describe('imports of observing systems', () => {
    it('do not count as unused', async () => {
        const v = await validateFiles({
            'plant.twin': 'import "crew.agent"\ntwin Plant {\n  stock Level = 0\n}\n',
            'crew.agent': crew
        });
        expect(v.codes('plant.twin')).toEqual([]);
        expect(v.codes('crew.agent')).toEqual([]);
    });

    it('an agent file that does not observe the twin is still an unused import', async () => {
        const v = await validateFiles({
            'plant.twin': 'import "other.agent"\ntwin Plant {\n  stock Level = 0\n}\n',
            'other.agent': other
        });
        expect(v.codes('plant.twin')).toEqual(['unused-import']);
    });
});
