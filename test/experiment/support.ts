/** Bundles the fake-model worker once per test file (esbuild, a few milliseconds), under a name of its own. */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

export const ROOT = path.resolve(__dirname, '..', '..');

export async function buildFakeWorker(): Promise<string> {
    const outfile = path.join(ROOT, 'test', '.work', `fake-worker-${process.pid}-${crypto.randomBytes(4).toString('hex')}.cjs`);
    await esbuild.build({
        entryPoints: [path.join(ROOT, 'test', 'experiment', 'fake-worker.ts')],
        bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile, logLevel: 'warning',
        // The worker loads onnxruntime-node (native code) for twins with models: from node_modules, as in dist/worker.cjs.
        external: ['onnxruntime-node']
    });
    return outfile;
}
