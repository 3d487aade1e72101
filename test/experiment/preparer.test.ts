/**
 * The server's RunPreparer: one set of language services for every run it prepares, with each
 * run's documents dropped afterwards, so that a file edited between two runs is read afresh
 * (a cached document would run the old model), and runs prepared at once do not mix.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunPreparer } from '../../runtime/experiment/session.js';

const ROOT = path.resolve(__dirname, '..', '..');
const bank = fs.readFileSync(path.join(ROOT, 'examples', 'bank', 'bank.twin'), 'utf8');
let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-preparer-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('RunPreparer', () => {
    it('reads a file edited between two runs afresh: its new experiment, then its new error', async () => {
        const preparer = new RunPreparer();
        fs.writeFileSync(path.join(dir, 'bank.twin'), bank);
        const first = await preparer.prepare('bank.twin', { experiment: 'Baseline' }, dir);
        expect(first.kind === 'ready' && first.plan.replications).toBe(20);
        fs.writeFileSync(path.join(dir, 'bank.twin'), bank.replace('replications 20', 'replications 7'));
        const second = await preparer.prepare('bank.twin', { experiment: 'Baseline' }, dir);
        expect(second.kind === 'ready' && second.plan.replications).toBe(7);
        fs.writeFileSync(path.join(dir, 'bank.twin'), bank.replace('seize Teller', 'seize Clerk'));
        const third = await preparer.prepare('bank.twin', { experiment: 'Baseline' }, dir);
        expect(third.kind).toBe('errors');
        if (third.kind === 'errors') expect(third.check.diagnostics.some(d => /Clerk/.test(d.message))).toBe(true);
    });

    it('prepares runs asked for at once one at a time, each with its own file', async () => {
        const preparer = new RunPreparer();
        fs.writeFileSync(path.join(dir, 'a.twin'), bank.replace('replications 20', 'replications 3'));
        fs.writeFileSync(path.join(dir, 'b.twin'), bank.replace('replications 20', 'replications 5').replace('twin Bank', 'twin Branch').replaceAll('for Bank', 'for Branch'));
        const [a, b, bad] = await Promise.all([
            preparer.prepare('a.twin', { experiment: 'Baseline' }, dir),
            preparer.prepare('b.twin', { experiment: 'Baseline' }, dir),
            preparer.prepare('missing.twin', {}, dir)
        ]);
        expect(a.kind === 'ready' && [a.plan.twin, a.plan.replications]).toEqual(['Bank', 3]);
        expect(b.kind === 'ready' && [b.plan.twin, b.plan.replications]).toEqual(['Branch', 5]);
        expect(bad.kind).toBe('errors');
        // And after them, the first again, still right.
        const again = await preparer.prepare('a.twin', { experiment: 'Baseline' }, dir);
        expect(again.kind === 'ready' && again.plan.replications).toBe(3);
    });
});
