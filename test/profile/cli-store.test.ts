/**
 * `aimatrix profile` in process: a workspace where the report cannot be stored still gets
 * the profile it measured (printed, with one warning line), not an error that loses it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { profileCommand } from '../../runtime/cli/profile';
import type { ProfileReport } from '../../runtime/profile/profile';
import { identityModel, removeTempModels, writeTempModel } from '../support/onnx-models';

afterAll(removeTempModels);

function collect(): { stream: PassThrough; text: () => string } {
    const stream = new PassThrough();
    let text = '';
    stream.setEncoding('utf8').on('data', (s: string) => { text += s; });
    return { stream, text: () => text };
}

it('prints the report and warns once when .aimatrix/profiles cannot be made', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-profile-store-'));
    try {
        fs.writeFileSync(path.join(cwd, '.aimatrix'), 'a file where the folder would go');
        const model = writeTempModel(identityModel({ width: 2 }));
        const out = collect();
        const err = collect();
        const code = await profileCommand(model, { json: true, warmup: 1, iterations: 5 }, { cwd, stdout: out.stream, stderr: err.stream });
        await new Promise(resolve => setImmediate(resolve));
        expect(code).toBe(0);
        const report = JSON.parse(out.text()) as ProfileReport;
        expect(report.runs).toHaveLength(1);
        expect(err.text().split('\n').filter(l => l.startsWith('warning: the report is not stored under'))).toHaveLength(1);
        expect(err.text()).not.toContain('aimatrix:');
    } finally {
        fs.rmSync(cwd, { recursive: true, force: true });
    }
});
