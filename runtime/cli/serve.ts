/**
 * `aimatrix serve [--port N] [--workspace DIR]`: the runtime server (runtime/server/server.ts)
 * in the foreground, logging to stderr, until Ctrl+C, SIGTERM or a client's
 * `server.shutdown`. Exit status 0 after a clean stop, 1 when it cannot start.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { liveServer } from '../server/connection-file.js';
import { Logger } from '../server/log.js';
import { isOrigin, RuntimeServer } from '../server/server.js';
import { profileModel, ProfileUsageError } from '../profile/index.js';
import { RunError } from '../server/run-manager.js';

interface ServeOptions {
    port: number;
    workspace?: string;
    allowOrigin: string[];
    maxFrame: number;
    subscriberBuffer: number;
    subscriberRate: number;
    json?: boolean;
    quiet?: boolean;
}

declare const __AIMATRIX_VERSION__: string | undefined;
const VERSION = typeof __AIMATRIX_VERSION__ === 'string' ? __AIMATRIX_VERSION__ : '0.0.0-dev';

export function registerServe(program: Command, setExitCode: (code: number) => void): void {
    program.command('serve')
        .description('run the runtime server: JSON-RPC 2.0 over WebSocket on 127.0.0.1 (runs, live traces, models)')
        .option('--port <n>', 'port to listen on (default: a free one)', whole(0, 65535), 0)
        .option('--workspace <dir>', 'the workspace it serves (default: the current folder)')
        .option('--allow-origin <origin>', 'a browser origin allowed to connect with the token (repeatable)', (v: string, prev: string[]) => {
            if (!isOrigin(v)) throw new InvalidArgumentError(`'${v}' is not an origin (scheme://host[:port], e.g. http://localhost:3000, no path).`);
            return [...prev, v];
        }, [])
        .option('--max-frame <bytes>', 'largest accepted WebSocket frame', whole(1024, 1 << 30), 1 << 20)
        .option('--subscriber-buffer <records>', 'records a trace subscriber may fall behind before records are dropped for it', whole(1, 1e9), 50_000)
        .option('--subscriber-rate <records>', 'records per second a trace subscriber is sent at most while its run is live (0: no limit)', whole(0, 1e9), 20_000)
        .option('--json', 'print {"port","pid","connectionFile"} on standard output once listening')
        .option('--quiet', 'log warnings and errors only')
        .addHelpText('after', [
            '',
            'The server listens on 127.0.0.1 only and writes .aimatrix/runtime.json (port, token, pid, version;',
            'mode 0600) in the workspace, removed when it stops. Clients send the token as',
            '"Authorization: Bearer <token>" or ?token=<token>. Protocol: docs/runtime-server.md.'
        ].join('\n'))
        .action(async (opts: ServeOptions) => {
            setExitCode(await serveCommand(opts));
        });
}

function whole(min: number, max: number): (value: string) => number {
    return value => {
        const n = Number(value);
        if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
        return n;
    };
}

/** Whether something accepts connections on 127.0.0.1:port (a timeout counts as yes: better refuse than run two servers). */
function listening(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const socket = net.connect(port, '127.0.0.1');
        socket.setTimeout(2000, () => { socket.destroy(); resolve(true); });
        socket.once('connect', () => { socket.destroy(); resolve(true); });
        socket.once('error', () => { socket.destroy(); resolve(false); });
    });
}

async function serveCommand(opts: ServeOptions): Promise<number> {
    const workspace = path.resolve(opts.workspace ?? process.cwd());
    if (!fs.existsSync(workspace) || !fs.statSync(workspace).isDirectory()) {
        process.stderr.write(`aimatrix: ${opts.workspace ?? workspace}: no such folder\n`);
        return 1;
    }
    const running = liveServer(workspace);
    // A file whose pid is alive but whose port takes no connection was left by a server that
    // died (the pid now belongs to another process, e.g. after a restart): it is stale.
    if (running && await listening(running.port)) {
        process.stderr.write(`aimatrix: a runtime server already serves ${workspace} (pid ${running.pid}, port ${running.port})\n`);
        return 1;
    }
    const log = new Logger(process.stderr, opts.quiet ? 'warn' : 'info');
    const server = new RuntimeServer({
        workspace, port: opts.port, version: VERSION, workerEntry: path.join(__dirname, 'worker.cjs'), log,
        maxPayload: opts.maxFrame, allowOrigins: opts.allowOrigin, limits: { maxLag: opts.subscriberBuffer, maxRate: opts.subscriberRate },
        profile: async (model, params, onProgress) => {
            try {
                return await profileModel({
                    model, providers: params.providers, batches: params.batches, concurrency: params.concurrency, warmup: params.warmup,
                    iterations: params.iterations, threads: params.threads, opRuns: params.opRuns
                }, p => onProgress(p.kind, p.kind === 'run' ? `${p.run.provider} batch ${p.run.batch}` : p.message));
            } catch (error) {
                // A model or options the profiler cannot use: the client's mistake, said in one line.
                if (error instanceof ProfileUsageError || (error instanceof Error && error.name === 'ProfileError')) throw new RunError(error.message, 'usage');
                throw error;
            }
        }
    });
    const onSignal = (signal: NodeJS.Signals): void => { void server.stop(`${signal}`); };
    const onCrash = (error: unknown): void => {
        log.error(`internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    try {
        let port: number;
        try {
            port = await server.start();
        } catch (error) {
            const code = (error as NodeJS.ErrnoException).code;
            process.stderr.write(`aimatrix: cannot listen on 127.0.0.1:${opts.port}: ${code ?? (error instanceof Error ? error.message : String(error))}\n`);
            return 1;
        }
        if (opts.json) process.stdout.write(JSON.stringify({ port, pid: process.pid, connectionFile: path.join(workspace, '.aimatrix', 'runtime.json') }) + '\n');
        await server.stopped;
        return 0;
    } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('uncaughtException', onCrash);
        process.off('unhandledRejection', onCrash);
    }
}
