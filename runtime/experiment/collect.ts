/**
 * A full garbage collection, for a long-lived thread between two runs (the runtime server's
 * main thread, a kept experiment worker). Run after run, V8 lets a heap that allocates fast grow
 * well past what it keeps: the server running traced runs back to back went from 38 to 86 MB
 * of heap (and past 200 MB of memory) though it kept about 30 MB. Collected when a run ends,
 * while nothing waits on the thread, the heap stays near what it keeps. V8's `gc` is made
 * reachable once, in a context of its own.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
    if (gc === undefined) {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc') as () => void;
        // Only that context gets it: contexts and workers made later do not see a global `gc`.
        setFlagsFromString('--no-expose-gc');
    }
    gc();
}
