/**
 * The manifest keeps its promises: settings agree with protocol/settings.ts, every file
 * it points at exists, and the packaged extension contains exactly what it needs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../protocol/index.js';

const root = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    main: string;
    bin: Record<string, string>;
    contributes: {
        configuration: { properties: Record<string, { type: string; default: unknown; enum?: string[] }> };
        languages: { id: string; extensions: string[]; configuration: string }[];
        grammars: { language: string; scopeName: string; path: string }[];
        snippets: { language: string; path: string }[];
        commands: { command: string }[];
    };
};

describe('package.json', () => {
    it('declares exactly the settings of protocol/settings.ts, with the same types and defaults', () => {
        const declared = manifest.contributes.configuration.properties;
        const specs = Object.values(SETTINGS);
        expect(Object.keys(declared).sort()).toEqual(specs.map(s => s.key).sort());
        for (const spec of specs) {
            const d = declared[spec.key];
            expect(d.type, spec.key).toBe(spec.type);
            expect(d.default, spec.key).toEqual(spec.default);
            expect(d.enum, spec.key).toEqual('enum' in spec ? spec.enum : undefined);
        }
    });

    it('points at files that exist after the build', () => {
        const files = [
            manifest.main,
            ...Object.values(manifest.bin),
            ...manifest.contributes.languages.map(l => l.configuration),
            ...manifest.contributes.grammars.map(g => g.path),
            ...manifest.contributes.snippets.map(s => s.path),
            'dist/language-server.cjs',
            'dist/cli.cjs'
        ];
        for (const f of files) {
            expect(fs.existsSync(path.join(root, f)), f).toBe(true);
        }
    });

    it('registers every command it declares', () => {
        const source = fs.readFileSync(path.join(root, 'src/commands.ts'), 'utf8');
        for (const { command } of manifest.contributes.commands) {
            expect(source, command).toContain(`'${command}'`);
        }
    });

    it('packages the bundles and assets, and none of the sources', () => {
        const out = execFileSync(process.execPath, [path.join(root, 'node_modules/@vscode/vsce/vsce'), 'ls', '--no-dependencies'], { cwd: root, encoding: 'utf8' });
        const files = out.split('\n').map(l => l.trim()).filter(Boolean);
        for (const needed of ['package.json', 'dist/extension.cjs', 'dist/language-server.cjs', 'dist/cli.cjs', 'bin/aimatrix.cjs', 'README.md', 'LICENSE']) {
            expect(files, needed).toContain(needed);
        }
        for (const g of manifest.contributes.grammars) expect(files).toContain(g.path.replace(/^\.\//, ''));
        expect(files.filter(f => /^(src|language-server|runtime|test|node_modules)\//.test(f) || f.endsWith('.map'))).toEqual([]);
    });
});
