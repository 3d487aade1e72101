/**
 * Inputs a profile feeds: which dimension the batch fills, `--dim` overrides (by name and by
 * INPUT[AXIS]), the audio heuristic that makes Silero VAD work out of the box (and says so),
 * the errors for a dimension that stays dynamic, and tensors of the right type and shape.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOnnxMetadata, type OnnxTensorInfo } from '../../language-server/src/onnx-metadata';
import { makeFeeds, parseDimOverride, planInputs, ProfileUsageError, reportShape, shapeFor } from '../../runtime/profile/inputs';
import { identityModel, sequenceModel } from '../support/onnx-models';

const VAD = path.resolve(__dirname, '../../node_modules/@ricky0123/vad-web/dist');
const meta = (file: string) => readOnnxMetadata(fs.readFileSync(path.join(VAD, file))).inputs;
const t = (name: string, type: string, shape: (number | string)[]): OnnxTensorInfo => ({ name, type, shape, hasShape: true });
const none = new Map<string, number>();

describe('planInputs', () => {
    it('fills the first dynamic dimension of each input with the batch (Silero v5, unnamed dimensions)', () => {
        const plan = planInputs(meta('silero_vad_v5.onnx'), none);
        expect(plan.inputs.map(i => [i.name, reportShape(i)])).toEqual([
            ['input', ['batch', 512]], ['state', [2, 'batch', 128]], ['sr', []]
        ]);
        expect(plan.inputs.map(i => shapeFor(i, 8))).toEqual([[8, 512], [2, 8, 128], []]);
        expect(plan.batched).toBe(true);
        // The assumptions are said, each in one line.
        expect(plan.notes).toHaveLength(2);
        expect(plan.notes[0]).toMatch(/^input\[1\] = 512 \(assumed: .*--dim 'input\[1\]=SIZE'/);
        expect(plan.notes[1]).toMatch(/^sr = 16000 \(assumed/);
        expect(plan.inputs[2].fill).toBe(16000);
    });

    it('uses the named batch dimension everywhere it occurs (Silero legacy)', () => {
        const plan = planInputs(meta('silero_vad_legacy.onnx'), none);
        expect(plan.inputs.map(i => reportShape(i))).toEqual([['batch', 512], [], [2, 'batch', 64], [2, 'batch', 64]]);
    });

    it('lets --dim override the heuristic, by name or by axis', () => {
        expect(reportShape(planInputs(meta('silero_vad_legacy.onnx'), new Map([['sequence', 256]])).inputs[0])).toEqual(['batch', 256]);
        const v5 = planInputs(meta('silero_vad_v5.onnx'), new Map([['input[1]', 1024]]));
        expect(reportShape(v5.inputs[0])).toEqual(['batch', 1024]);
        expect(v5.notes.some(n => n.startsWith('input[1]'))).toBe(false);
    });

    it('names a second dynamic dimension that nothing fixes, and how to fix it', () => {
        const inputs = readOnnxMetadata(sequenceModel()).inputs;
        expect(() => planInputs(inputs, none)).toThrow(ProfileUsageError);
        expect(() => planInputs(inputs, none)).toThrow("dimension 'T' (x[1]) of the model is dynamic and is not the batch dimension: fix it with --dim T=SIZE");
        expect(reportShape(planInputs(inputs, new Map([['T', 7]])).inputs[0])).toEqual(['N', 7, 8]);
        expect(() => planInputs([t('a', 'float32', ['?', '?'])], none)).toThrow("--dim 'a[1]=SIZE'");
    });

    it('refuses --dim on the batch dimension and on a dimension the model does not have', () => {
        const inputs = readOnnxMetadata(sequenceModel()).inputs;
        expect(() => planInputs(inputs, new Map([['T', 2], ['N', 4]]))).toThrow('--dim N: that is the batch dimension of input \'x\'; set it with --batch');
        expect(() => planInputs(inputs, new Map([['T', 2], ['Q', 4]]))).toThrow('--dim Q: the model has no such dynamic dimension outside the batch (dynamic: N, T)');
    });

    it('knows a model without a dynamic dimension is not batched, and refuses types it cannot generate', () => {
        expect(planInputs([t('x', 'float32', [3, 4])], none).batched).toBe(false);
        expect(() => planInputs([t('x', 'complex64', [3])], none)).toThrow(/element type complex64/);
        expect(() => planInputs([{ name: 'x', type: 'float32', shape: [], hasShape: false }], none)).toThrow(/no shape/);
    });
});

describe('parseDimOverride', () => {
    it('reads NAME=SIZE and INPUT[AXIS]=SIZE, and refuses the rest', () => {
        expect(parseDimOverride('T=16')).toEqual({ key: 'T', size: 16 });
        expect(parseDimOverride('input[1]=512')).toEqual({ key: 'input[1]', size: 512 });
        for (const bad of ['T', 'T=', '=3', 'T=0', 'T=-1', 'T=1.5', 'T=x']) expect(() => parseDimOverride(bad), bad).toThrow(ProfileUsageError);
    });
});

describe('makeFeeds', () => {
    it('makes tensors of each element type and shape, seeded', () => {
        const plan = planInputs([
            t('f', 'float32', ['N', 3]), t('d', 'float64', ['N']), t('i', 'int64', ['N', 2]), t('j', 'int32', [2]),
            t('b', 'bool', ['N']), t('h', 'float16', ['N']), t('u', 'uint8', [4]), t('s', 'string', [1]), t('sr', 'int64', [])
        ], none);
        const feeds = makeFeeds(plan, 5, 3);
        expect(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, [v.type, v.dims]]))).toEqual({
            f: ['float32', [5, 3]], d: ['float64', [5]], i: ['int64', [5, 2]], j: ['int32', [2]], b: ['bool', [5]],
            h: ['float16', [5]], u: ['uint8', [4]], s: ['string', [1]], sr: ['int64', []]
        });
        const f = feeds.f.data as Float32Array;
        expect(f.every(v => v >= -1 && v < 1)).toBe(true);
        expect(new Set(f).size).toBeGreaterThan(10);
        expect((feeds.i.data as BigInt64Array).every(v => v >= 0n && v < 10n)).toBe(true);
        expect(Array.from(feeds.sr.data as BigInt64Array)).toEqual([16000n]);
        expect(makeFeeds(plan, 5, 3).f.data).toEqual(f);
        expect(makeFeeds(plan, 5, 4).f.data).not.toEqual(f);
    });

    it('feeds the identity model at its batch size', () => {
        const plan = planInputs(readOnnxMetadata(identityModel({ width: 4 })).inputs, none);
        expect(makeFeeds(plan, 32).x.dims).toEqual([32, 4]);
    });
});

describe('planInputs with the batch name on several axes', () => {
    it('fills every axis named like the batch ([N, N], and N in a second input) with the batch size', () => {
        const plan = planInputs([t('x', 'float32', ['N', 'N']), t('lengths', 'int64', [4, 'N'])], none);
        expect(plan.inputs.map(i => shapeFor(i, 3))).toEqual([[3, 3], [4, 3]]);
        expect(plan.inputs.map(reportShape)).toEqual([['N', 'N'], [4, 'N']]);
        expect(() => planInputs([t('x', 'float32', ['N', 'N'])], new Map([['N', 2]]))).toThrow(/batch dimension/);
    });
});
