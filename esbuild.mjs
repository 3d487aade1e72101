// One build script, one entry per bundle. Type checking is `tsc --noEmit`, separately.
import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** @type {import('esbuild').BuildOptions} */
const node = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
    // Langium and its dependencies are ESM; bundling them into CommonJS keeps every bundle self-contained.
    mainFields: ['module', 'main'],
    // `aimatrix --version`, the runtime server's connection file and exported traces say which version made them.
    define: { __AIMATRIX_VERSION__: JSON.stringify(version) }
};

// Native bindings stay in node_modules, loaded at run time: onnxruntime-node (its .node
// file and shared libraries), and the optional native speed-ups `ws` asks for.
const runtimeExternal = ['onnxruntime-node', 'bufferutil', 'utf-8-validate'];

const bundles = [
    { ...node, entryPoints: { extension: 'src/extension.ts' }, outdir: 'dist', outExtension: { '.js': '.cjs' }, external: ['vscode'] },
    { ...node, entryPoints: { 'language-server': 'language-server/src/main.ts' }, outdir: 'dist', outExtension: { '.js': '.cjs' } },
    { ...node, entryPoints: { cli: 'runtime/cli/main.ts' }, outdir: 'dist', outExtension: { '.js': '.cjs' }, external: runtimeExternal },
    // The experiment worker thread of `aimatrix run`, loaded by the CLI from beside itself.
    { ...node, entryPoints: { worker: 'runtime/experiment/worker-main.ts' }, outdir: 'dist', outExtension: { '.js': '.cjs' }, external: runtimeExternal }
];

if (watch) {
    const contexts = await Promise.all(bundles.map(b => esbuild.context(b)));
    await Promise.all(contexts.map(c => c.watch()));
    console.log('watching…');
} else {
    await Promise.all(bundles.map(b => esbuild.build(b)));
}
