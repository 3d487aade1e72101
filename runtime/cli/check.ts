/**
 * `aimatrix check [PATH…]`: diagnostics of twin and agent files.
 * Exit status: 1 when there is an error, 2 on a usage error, 0 otherwise.
 */
import type { Command } from 'commander';
import { checkPaths, type CheckDiagnostic } from '../../language-server/src/index.js';

export function registerCheck(program: Command, setExitCode: (code: number) => void): void {
    program.command('check')
        .description('check .twin and .agent files (default: the current folder) and print their diagnostics')
        .argument('[paths...]', 'files or folders to check', ['.'])
        .option('--json', 'print one JSON document: {"diagnostics":[…],"errors":N,"warnings":N}')
        .addHelpText('after', [
            '',
            'Each diagnostic is printed as `file:line:column severity code message` (1-based line and column,',
            'paths relative to the current folder). A path that cannot be read is reported as a diagnostic.',
            'Exit status: 1 when there is an error, 2 on a usage error, 0 otherwise.'
        ].join('\n'))
        .action(async (paths: string[], opts: { json?: boolean }) => {
            const result = await checkPaths(paths);
            if (opts.json) {
                const diagnostics = result.diagnostics.map(({ file, line, column, severity, code, message }) => ({ file, line, column, severity, code, message }));
                process.stdout.write(JSON.stringify({ diagnostics, errors: result.errors, warnings: result.warnings }) + '\n');
            } else {
                for (const d of result.diagnostics) process.stdout.write(formatDiagnostic(d) + '\n');
                const files = result.documents.length;
                process.stderr.write(`${files} file${files === 1 ? '' : 's'} checked: ${result.errors} error${result.errors === 1 ? '' : 's'}, ${result.warnings} warning${result.warnings === 1 ? '' : 's'}\n`);
            }
            setExitCode(result.errors > 0 ? 1 : 0);
        });
}

/** One line per diagnostic: a multi-line message (a parser's list of expected tokens) is folded. */
export function formatDiagnostic(d: CheckDiagnostic): string {
    const message = d.message.split(/\r?\n/).map(s => s.trim()).filter(s => s.length > 0).join(' ');
    return `${d.file}:${d.line}:${d.column} ${d.severity} ${d.code} ${message}`;
}
