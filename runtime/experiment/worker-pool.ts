/**
 * Experiment workers kept from one run to the next, per worker script. A worker made per run
 * costs its start-up (a thread, an isolate, the language core loaded again) and, in a
 * long-lived process such as the runtime server, memory: a freed isolate's memory is not all
 * given back to the system, so a server running traced runs back to back grew by tens of MB
 * over a minute, where the same server reusing its workers stayed at its first run's peak
 * (bench:server's stalled-subscriber step measures it).
 *
 * An idle worker is unreferenced (it never keeps a process alive) and ends after IDLE_MS; a
 * worker that dies while idle simply leaves the pool.
 */
import * as os from 'node:os';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** An idle worker ends after this long without a run. */
const IDLE_MS = 60_000;

interface Idle {
    readonly worker: Worker;
    readonly timer: NodeJS.Timeout;
    readonly gone: () => void;
}

const idle = new Map<string, Idle[]>();

/** A worker running `entry`: an idle one if there is one, else a new one. The caller owns it until it gives it back or terminates it. */
export function takeWorker(entry: string, resourceLimits: ResourceLimits): Worker {
    const kept = idle.get(entry)?.pop();
    if (kept !== undefined) {
        clearTimeout(kept.timer);
        kept.worker.off('exit', kept.gone);
        kept.worker.off('error', kept.gone);
        kept.worker.ref();
        return kept.worker;
    }
    return new Worker(entry, { resourceLimits });
}

/**
 * Keeps a worker (which has been sent its run's `end`, and to which its caller no longer
 * listens) for the next run, or ends it when as many as there are cores are kept already.
 */
export function giveBackWorker(entry: string, worker: Worker): void {
    const list = idle.get(entry) ?? [];
    idle.set(entry, list);
    if (list.length >= os.availableParallelism()) {
        void worker.terminate();
        return;
    }
    const gone = (): void => {
        const at = list.findIndex(i => i.worker === worker);
        if (at >= 0) {
            clearTimeout(list[at].timer);
            list.splice(at, 1);
        }
    };
    const timer = setTimeout(() => {
        gone();
        void worker.terminate();
    }, IDLE_MS);
    timer.unref();
    worker.on('exit', gone);
    // A worker that fails while idle is dropped; the listener keeps its error from being thrown here.
    worker.on('error', gone);
    worker.unref();
    list.push({ worker, timer, gone });
}

/** Idle workers kept for `entry`. */
export function idleWorkers(entry: string): number {
    return idle.get(entry)?.length ?? 0;
}

/** Ends every idle worker (tests, a process that wants to exit at once). */
export async function endIdleWorkers(): Promise<void> {
    const all = [...idle.values()].flat();
    idle.clear();
    for (const i of all) clearTimeout(i.timer);
    await Promise.all(all.map(i => i.worker.terminate()));
}
