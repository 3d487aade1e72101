/**
 * `aimatrix`: the command-line tool. Each command lives in its own module.
 */
import { Command, CommanderError } from 'commander';
import { registerCheck } from './check.js';

export async function main(argv: readonly string[]): Promise<number> {
    const program = new Command('aimatrix')
        .description('AIMatrix Studio command-line tool: check, run, profile and trace digital twins and agents.')
        .version(VERSION, '-v, --version')
        .showHelpAfterError('(run with --help for usage)')
        .exitOverride();
    let exitCode = 0;
    registerCheck(program, code => { exitCode = code; });
    try {
        await program.parseAsync(argv as string[], { from: 'user' });
    } catch (error) {
        if (error instanceof CommanderError) {
            // --help and --version exit 0; a usage error exits 2.
            return error.exitCode === 0 ? 0 : 2;
        }
        process.stderr.write(`aimatrix: ${error instanceof Error ? error.message : String(error)}\n`);
        return 1;
    }
    return exitCode;
}

declare const __AIMATRIX_VERSION__: string | undefined;
const VERSION = typeof __AIMATRIX_VERSION__ === 'string' ? __AIMATRIX_VERSION__ : '0.0.0-dev';
