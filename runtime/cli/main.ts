/**
 * `aimatrix`: the command-line tool. Each command lives in its own module.
 *
 * Conventions every command follows: `--help` on the program and on each command;
 * an error is one line on stderr (`aimatrix: …`), never a stack trace; exit status 2
 * on a usage error (unknown option or command), 1 on a failure, 0 otherwise.
 */
import { Command, CommanderError } from 'commander';
import { registerCheck } from './check.js';
import { registerProfile } from './profile.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerTrace } from './trace.js';

export async function main(argv: readonly string[]): Promise<number> {
    const program = new Command('aimatrix')
        .description('AIMatrix Studio command-line tool: check, run, profile and trace digital twins and agents.')
        .version(VERSION, '-v, --version')
        // Commander writes `error: unknown option '--x'` and, separately, a hint; make it one line.
        .configureOutput({
            outputError: (message, write) => write(`aimatrix: ${oneLine(message).replace(/^error: /, '')} (run with --help for usage)\n`)
        })
        .exitOverride();
    let exitCode = 0;
    // Subcommands inherit the output configuration and the exit override from the program.
    registerCheck(program, code => { exitCode = code; });
    registerRun(program, code => { exitCode = code; });
    registerProfile(program, code => { exitCode = code; });
    registerTrace(program, code => { exitCode = code; });
    registerServe(program, code => { exitCode = code; });
    const quiet = quietInternalLogging();
    try {
        await program.parseAsync(argv as string[], { from: 'user' });
    } catch (error) {
        if (error instanceof CommanderError) {
            // --help and --version exit 0; a usage error exits 2.
            return error.exitCode === 0 ? 0 : 2;
        }
        process.stderr.write(`aimatrix: ${oneLine(error)}\n`);
        return 1;
    } finally {
        quiet.restore();
    }
    return exitCode;
}

/**
 * Langium logs failures inside its services (a validator or scope provider that throws)
 * with `console.error`, stack trace included, and still turns them into diagnostics. A
 * user of the CLI sees the diagnostic; the stack trace goes to stderr only when
 * AIMATRIX_DEBUG is set, otherwise one line says that something went wrong inside.
 */
function quietInternalLogging(): { restore(): void } {
    if (process.env.AIMATRIX_DEBUG) return { restore: () => undefined };
    const saved = { error: console.error, warn: console.warn, log: console.log };
    let first: string | undefined;
    let count = 0;
    const swallow = (...args: unknown[]): void => {
        count++;
        first ??= args.map(a => a instanceof Error ? a.message : String(a)).join(' ');
    };
    console.error = swallow;
    console.warn = swallow;
    // console.log is left alone: no library writes results through it, and commands may.
    return {
        restore() {
            console.error = saved.error;
            console.warn = saved.warn;
            if (count > 0) {
                process.stderr.write(`aimatrix: internal error in the language services (${count} message${count === 1 ? '' : 's'}), first: ${oneLine(first)}; set AIMATRIX_DEBUG=1 for details\n`);
            }
        }
    };
}

function oneLine(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    return text.split(/\r?\n/).map(s => s.trim()).filter(s => s.length > 0).join(' ').slice(0, 500);
}

declare const __AIMATRIX_VERSION__: string | undefined;
const VERSION = typeof __AIMATRIX_VERSION__ === 'string' ? __AIMATRIX_VERSION__ : '0.0.0-dev';
