/**
 * `aimatrix check` as a user runs it: the built CLI (`node bin/aimatrix.cjs`) in a child
 * process, against temporary folders of good and bad files. Exit codes, the text and
 * JSON shapes, relative paths, 1-based positions, and unreadable input as diagnostics.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './support/build.js';

const BIN = path.join(ROOT, 'bin', 'aimatrix.cjs');

interface Run { code: number | null; stdout: string; stderr: string }

function aimatrix(args: string[], cwd: string): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, AIMATRIX_DEBUG: '' } });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
        child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        child.on('error', reject);
        child.on('close', code => resolve({ code, stdout, stderr }));
    });
}

const LINE = /^(?<file>[^:\s][^:]*):(?<line>\d+):(?<column>\d+) (?<severity>error|warning|info|hint) (?<code>[a-z][a-z0-9-]*) (?<message>\S.*)$/;

interface Parsed { file: string; line: number; column: number; severity: string; code: string; message: string }

function parseText(stdout: string): Parsed[] {
    const lines = stdout.split('\n').filter(l => l.length > 0);
    return lines.map(l => {
        const m = LINE.exec(l);
        expect(m, `not a diagnostic line: ${l}`).not.toBeNull();
        const g = m!.groups!;
        return { file: g.file, line: Number(g.line), column: Number(g.column), severity: g.severity, code: g.code, message: g.message };
    });
}

interface JsonReport { diagnostics: Parsed[]; errors: number; warnings: number }

function parseJson(stdout: string): JsonReport {
    const report = JSON.parse(stdout) as JsonReport;
    expect(Object.keys(report).sort()).toEqual(['diagnostics', 'errors', 'warnings']);
    for (const d of report.diagnostics) {
        expect(Object.keys(d).sort()).toEqual(['code', 'column', 'file', 'line', 'message', 'severity']);
        expect(typeof d.file).toBe('string');
        expect(Number.isInteger(d.line) && d.line >= 1).toBe(true);
        expect(Number.isInteger(d.column) && d.column >= 1).toBe(true);
        expect(['error', 'warning', 'info', 'hint']).toContain(d.severity);
        expect(d.code).toMatch(/^[a-z][a-z0-9-]*$/);
        expect(d.message.length).toBeGreaterThan(0);
    }
    expect(report.errors).toBe(report.diagnostics.filter(d => d.severity === 'error').length);
    expect(report.warnings).toBe(report.diagnostics.filter(d => d.severity === 'warning').length);
    return report;
}

/** No stack trace, ever: stderr has no `    at …` frames. */
function expectNoStackTrace(run: Run): void {
    expect(run.stderr).not.toMatch(/^\s+at .+[(:]\d+/m);
    expect(run.stdout).not.toMatch(/^\s+at .+[(:]\d+/m);
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string, from = 0): { line: number; column: number } {
    const offset = text.indexOf(needle, from);
    expect(offset).toBeGreaterThanOrEqual(0);
    const before = text.slice(0, offset).split(/\r?\n/);
    return { line: before.length, column: before[before.length - 1].length + 1 };
}

const GOOD_TWIN = `// a clean bank
twin Bank {
  param tellers = 3
  param arrivalMean = 1 min
  resource Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(mean: arrivalMean) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: 2 min)
    release Teller
  }
  kpi busy = utilization(Teller)
}
`;

const GOOD_AGENT = `system Ops {
  channel alerts { level: number }
  agent Watcher {
    state seen = 0
    on alerts as msg {
      set seen += 1
    }
  }
}
`;

/** An unresolved name `Cashier` on line 5. */
const UNRESOLVED_TWIN = `twin Shop {
  param n = 2
  entity Buyer
  process Pay for Buyer {
    seize Cashier
  }
}
`;

/** A syntax error: `param = 3` has no name; the rest of the file still parses. */
const SYNTAX_TWIN = `twin Broken {
  param = 3
  resource R capacity 2
  entity E
  process P for E { seize Missing }
}
`;

let tmp: string;

function write(rel: string, text: string): string {
    const file = path.join(tmp, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
}

beforeAll(async () => {
    await ensureBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-cli-'));
    write('good/bank.twin', GOOD_TWIN);
    write('good/ops.agent', GOOD_AGENT);
    write('good/nested/deeper/bank2.twin', GOOD_TWIN.replace('twin Bank', 'twin Bank2'));
    write('bad/unresolved.twin', UNRESOLVED_TWIN);
    write('bad/syntax.twin', SYNTAX_TWIN);
    write('bad/crlf.twin', UNRESOLVED_TWIN.replace(/\n/g, '\r\n'));
    write('bad/notes.txt', 'not a twin\n');
    write('imports/main.twin', 'import "lib/shared.twin"\n\nexperiment Run for Shared {\n  set base = 2\n}\n');
    write('imports/lib/shared.twin', 'twin Shared {\n  param base = 1\n  param broken = nothing\n}\n');
    fs.mkdirSync(path.join(tmp, 'empty'));
}, 120_000);

afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('aimatrix check: clean input', () => {
    it('exits 0, prints no diagnostics and says how many files were checked', async () => {
        const run = await aimatrix(['check', 'good'], tmp);
        expect(run.stdout).toBe('');
        expect(run.code).toBe(0);
        expect(run.stderr).toMatch(/^3 files checked: 0 errors, 0 warnings\n$/);
    });

    it('checks the current folder when no path is given', async () => {
        const run = await aimatrix(['check'], path.join(tmp, 'good'));
        expect(run.code).toBe(0);
        expect(run.stderr).toMatch(/^3 files checked/);
    });

    it('--json prints exactly {"diagnostics":[],"errors":0,"warnings":0}', async () => {
        const run = await aimatrix(['check', '--json', 'good'], tmp);
        expect(run.code).toBe(0);
        expect(JSON.parse(run.stdout)).toEqual({ diagnostics: [], errors: 0, warnings: 0 });
        expect(run.stdout.trim().split('\n')).toHaveLength(1);
    });

    it('an empty folder is not an error', async () => {
        const run = await aimatrix(['check', 'empty'], tmp);
        expect(run.code).toBe(0);
        expect(run.stdout).toBe('');
    });

    it('the example workspace checks clean', async () => {
        const run = await aimatrix(['check', '--json', 'examples'], ROOT);
        const report = parseJson(run.stdout);
        expect(report.diagnostics.filter(d => d.severity === 'error')).toEqual([]);
        expect(run.code).toBe(0);
    });
});

describe('aimatrix check: diagnostics', () => {
    it('prints file:line:column severity code message with 1-based positions and exits 1', async () => {
        const run = await aimatrix(['check', 'bad/unresolved.twin'], tmp);
        expect(run.code).toBe(1);
        expectNoStackTrace(run);
        const diagnostics = parseText(run.stdout);
        const at = positionOf(UNRESOLVED_TWIN, 'Cashier');
        expect(at).toEqual({ line: 5, column: 11 });
        expect(diagnostics).toContainEqual(expect.objectContaining({
            file: path.join('bad', 'unresolved.twin'), ...at, severity: 'error', code: 'unresolved-reference'
        }));
        expect(diagnostics.find(d => d.code === 'unresolved-reference')!.message).toContain('Cashier');
        expect(run.stderr).toMatch(/1 file checked: [1-9]\d* errors?, \d+ warnings?/);
    });

    it('reports positions by line in a file with CRLF line endings', async () => {
        const run = await aimatrix(['check', 'bad/crlf.twin'], tmp);
        expect(run.code).toBe(1);
        const d = parseText(run.stdout).find(x => x.code === 'unresolved-reference');
        expect(d).toMatchObject({ line: 5, column: 11 });
    });

    it('reports a syntax error at its token and keeps checking the rest of the file', async () => {
        const run = await aimatrix(['check', 'bad/syntax.twin'], tmp);
        expect(run.code).toBe(1);
        const diagnostics = parseText(run.stdout);
        const syntax = diagnostics.filter(d => d.code === 'syntax-error');
        expect(syntax.length).toBeGreaterThanOrEqual(1);
        expect(syntax[0]).toMatchObject({ file: path.join('bad', 'syntax.twin'), severity: 'error', ...positionOf(SYNTAX_TWIN, '= 3') });
        // Recovery: the unresolved name three lines later is still found.
        expect(diagnostics).toContainEqual(expect.objectContaining({ code: 'unresolved-reference', ...positionOf(SYNTAX_TWIN, 'Missing') }));
    });

    it('every diagnostic is one line, even when the message has several', async () => {
        const text = await aimatrix(['check', 'bad'], tmp);
        const json = parseJson((await aimatrix(['check', '--json', 'bad'], tmp)).stdout);
        const lines = parseText(text.stdout);
        expect(lines).toHaveLength(json.diagnostics.length);
        lines.forEach((l, i) => {
            const j = json.diagnostics[i];
            expect({ ...l, message: undefined }).toEqual({ ...j, message: undefined });
            expect(l.message).toBe(j.message.split(/\r?\n/).map(s => s.trim()).filter(s => s).join(' '));
        });
    });

    it('--json has the documented shape, counts and relative paths', async () => {
        const run = await aimatrix(['check', 'bad', '--json'], tmp);
        expect(run.code).toBe(1);
        expectNoStackTrace(run);
        const report = parseJson(run.stdout);
        expect(report.errors).toBeGreaterThanOrEqual(4);
        const files = new Set(report.diagnostics.map(d => d.file));
        // Inside a folder only .twin and .agent files are checked: notes.txt is not a diagnostic.
        expect([...files].sort()).toEqual(['crlf.twin', 'syntax.twin', 'unresolved.twin'].map(f => path.join('bad', f)));
        // Sorted by file, then position.
        const keys = report.diagnostics.map(d => [d.file, d.line, d.column] as const);
        const sorted = [...keys].sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1] || a[2] - b[2]);
        expect(keys).toEqual(sorted);
    });

    it('paths are relative to the current folder, also for an absolute argument', async () => {
        const run = await aimatrix(['check', '--json', path.join(tmp, 'bad', 'unresolved.twin')], path.join(tmp, 'bad'));
        const report = parseJson(run.stdout);
        expect(report.diagnostics.map(d => d.file)).toContain('unresolved.twin');
        const fromRoot = parseJson((await aimatrix(['check', '--json', 'bad/unresolved.twin'], tmp)).stdout);
        expect(fromRoot.diagnostics.map(d => d.file)).toContain(path.join('bad', 'unresolved.twin'));
    });

    it('checks the files a checked file imports, and reports their diagnostics under their own name', async () => {
        const run = await aimatrix(['check', '--json', 'imports/main.twin'], tmp);
        expect(run.code).toBe(1);
        const report = parseJson(run.stdout);
        // `Shared` and its `base` resolve through the import; `nothing` in the imported file does not.
        expect(report.diagnostics.filter(d => d.file === path.join('imports', 'main.twin'))).toEqual([]);
        expect(report.diagnostics).toContainEqual(expect.objectContaining({
            file: path.join('imports', 'lib', 'shared.twin'), code: 'unresolved-reference', line: 3, column: 18
        }));
    });
});

describe('aimatrix check: input that cannot be checked is a diagnostic, not a crash', () => {
    it('a missing file', async () => {
        const run = await aimatrix(['check', '--json', 'no/such.twin', 'good'], tmp);
        expect(run.code).toBe(1);
        expectNoStackTrace(run);
        const report = parseJson(run.stdout);
        expect(report.diagnostics).toEqual([{
            file: path.join('no', 'such.twin'), line: 1, column: 1, severity: 'error', code: 'unreadable-file',
            message: expect.stringMatching(/no such file/) as unknown as string
        }]);
    });

    it('a file that is not a twin or agent file', async () => {
        const run = await aimatrix(['check', 'bad/notes.txt'], tmp);
        expect(run.code).toBe(1);
        expectNoStackTrace(run);
        expect(parseText(run.stdout)).toEqual([expect.objectContaining({
            file: path.join('bad', 'notes.txt'), line: 1, column: 1, severity: 'error', code: 'unreadable-file'
        })]);
    });

    it('a folder is searched recursively, including folders named like a source file', async () => {
        write('odd/looks-like.twin/inner.twin', UNRESOLVED_TWIN);
        const run = await aimatrix(['check', '--json', 'odd'], tmp);
        expectNoStackTrace(run);
        const report = parseJson(run.stdout);
        expect(report.diagnostics.map(d => d.file)).toContain(path.join('odd', 'looks-like.twin', 'inner.twin'));
        expect(run.code).toBe(1);
    });

    it('a file without read permission', async (context) => {
        const file = write('locked/secret.twin', GOOD_TWIN);
        fs.chmodSync(file, 0o000);
        try {
            let readable = false;
            try {
                fs.readFileSync(file);
                readable = true;
            } catch {
                readable = false;
            }
            if (readable) {
                context.skip('running as a user (root) whom chmod 000 does not stop from reading the file');
                return;
            }
            const run = await aimatrix(['check', '--json', 'locked'], tmp);
            expect(run.code).toBe(1);
            expectNoStackTrace(run);
            expect(parseJson(run.stdout).diagnostics).toEqual([expect.objectContaining({
                file: path.join('locked', 'secret.twin'), code: 'unreadable-file', message: expect.stringMatching(/permission denied/) as unknown as string
            })]);
        } finally {
            fs.chmodSync(file, 0o644);
        }
    });
});

describe('aimatrix: usage', () => {
    it('an unknown option is a usage error: exit 2, one line on stderr', async () => {
        const run = await aimatrix(['check', '--no-such-option', 'good'], tmp);
        expect(run.code).toBe(2);
        expect(run.stdout).toBe('');
        expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(run.stderr).toMatch(/^aimatrix: .*--no-such-option/);
    });

    it('an unknown command is a usage error', async () => {
        const run = await aimatrix(['chek'], tmp);
        expect(run.code).toBe(2);
        expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(run.stderr).toMatch(/^aimatrix: .*chek/);
    });

    it('--help works for the program and for check', async () => {
        const program = await aimatrix(['--help'], tmp);
        expect(program.code).toBe(0);
        expect(program.stdout).toMatch(/Usage: aimatrix/);
        expect(program.stdout).toMatch(/check/);
        const check = await aimatrix(['check', '--help'], tmp);
        expect(check.code).toBe(0);
        expect(check.stdout).toMatch(/Usage: aimatrix check/);
        expect(check.stdout).toMatch(/--json/);
        expect(check.stdout).toMatch(/Exit status/);
        const viaHelp = await aimatrix(['help', 'check'], tmp);
        expect(viaHelp.code).toBe(0);
        expect(viaHelp.stdout).toBe(check.stdout);
    });
});
