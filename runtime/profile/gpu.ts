/**
 * GPU utilisation and memory while a timed run goes on, from `nvidia-smi` in loop mode
 * (`--query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100`:
 * one line per GPU every 100 ms, e.g. `0, 37, 1024`). The sampler runs in its own process,
 * started before and stopped after the timed loop, so the loop itself is untouched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

export interface GpuSample {
    /** Index of the run in the report's `runs`. */
    readonly run: number;
    /** Milliseconds since the sampler started for that run. */
    readonly tMs: number;
    /** The GPU's index as nvidia-smi numbers it. */
    readonly index: number;
    readonly utilizationPct: number;
    readonly memoryUsedMb: number;
}

/** The first executable `name` on `PATH` (as the shell would find it), or undefined. */
export function findOnPath(name: string, envPath: string = process.env.PATH ?? ''): string | undefined {
    const exts = process.platform === 'win32' ? ['.exe', '.bat', '.cmd', ''] : [''];
    for (const dir of envPath.split(path.delimiter)) {
        if (dir === '') continue;
        for (const ext of exts) {
            const candidate = path.join(dir, name + ext);
            try {
                const stat = fs.statSync(candidate);
                if (!stat.isFile()) continue;
                if (process.platform !== 'win32') fs.accessSync(candidate, fs.constants.X_OK);
                return candidate;
            } catch {
                // not here
            }
        }
    }
    return undefined;
}

/** Parses one line of nvidia-smi's csv,noheader,nounits output: `index, utilization, memory`. Undefined when it is not one. */
export function parseNvidiaSmiLine(line: string): { index: number; utilizationPct: number; memoryUsedMb: number } | undefined {
    const fields = line.split(',').map(s => s.trim());
    if (fields.length !== 3) return undefined;
    const [index, util, mem] = fields.map(f => (/^\d+(\.\d+)?$/.test(f) ? Number(f) : NaN));
    if (![index, util, mem].every(Number.isFinite)) return undefined;
    return { index, utilizationPct: util, memoryUsedMb: mem };
}

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,utilization.gpu,memory.used', '--format=csv,noheader,nounits', '-lms', '100'];

/** One sampling session: started before a timed run, stopped after it. */
export class GpuSampler {
    private readonly child: ChildProcess;
    private readonly samples: GpuSample[] = [];
    private readonly started = performance.now();
    private readonly exited: Promise<void>;
    private failure: string | undefined;
    private firstSample: (() => void) | undefined;

    constructor(executable: string, private readonly run: number) {
        this.child = spawn(executable, NVIDIA_SMI_ARGS, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
        let stderr = '';
        this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        readline.createInterface({ input: this.child.stdout! }).on('line', line => {
            const parsed = parseNvidiaSmiLine(line);
            if (!parsed) return;
            this.samples.push({ run: this.run, tMs: performance.now() - this.started, ...parsed });
            this.firstSample?.();
        });
        this.exited = new Promise<void>(resolve => {
            this.child.on('error', error => {
                this.failure = error.message;
                resolve();
            });
            this.child.on('close', (code, signal) => {
                if (code !== 0 && signal === null && this.failure === undefined) {
                    this.failure = `exit status ${code}${stderr.trim() ? `: ${stderr.trim().split(/\r?\n/)[0]}` : ''}`;
                }
                resolve();
            });
        });
    }

    /**
     * Stops sampling and returns the samples. A run shorter than the sampling interval still
     * gets one sample: this waits for the first line, up to `waitMs`.
     */
    async stop(waitMs = 1000): Promise<{ samples: GpuSample[]; failure?: string }> {
        if (this.samples.length === 0 && this.failure === undefined && this.child.exitCode === null) {
            await Promise.race([
                new Promise<void>(resolve => { this.firstSample = resolve; }),
                new Promise<void>(resolve => setTimeout(resolve, waitMs).unref()),
                this.exited
            ]);
        }
        if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
        await this.exited;
        return { samples: this.samples, ...(this.failure !== undefined && this.samples.length === 0 ? { failure: this.failure } : {}) };
    }
}
