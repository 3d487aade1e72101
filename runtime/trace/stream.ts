/** Writing exports to a stream that may be slower than we are (a pipe, a file, a socket). */
import type { Writable } from 'node:stream';

/** Writes `text`, and waits for the stream to drain when its buffer is full: a slow destination never fills memory. */
export function put(out: Writable, text: string): Promise<void> {
    if (out.write(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
        const onDrain = (): void => { out.off('error', onError); resolve(); };
        const onError = (error: Error): void => { out.off('drain', onDrain); reject(error); };
        out.once('drain', onDrain);
        out.once('error', onError);
    });
}
