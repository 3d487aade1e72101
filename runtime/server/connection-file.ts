/**
 * `<workspace>/.aimatrix/runtime.json`: how clients find the running server (port, token,
 * pid, version). Written atomically with mode 0600 (the token is a secret), removed when
 * the server stops; a file left by a killed server is recognised by its dead pid.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RuntimeConnectionFile } from '../../protocol/index.js';
import { processAlive, writeFileAtomic } from '../store/run-store.js';

export function connectionFilePath(workspace: string): string {
    return path.join(workspace, '.aimatrix', 'runtime.json');
}

export function writeConnectionFile(workspace: string, content: RuntimeConnectionFile): string {
    const file = connectionFilePath(workspace);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(content, null, 2) + '\n', 0o600);
    return file;
}

/** The connection file of a workspace, or undefined when there is none or it is unreadable. */
export function readConnectionFile(workspace: string): RuntimeConnectionFile | undefined {
    try {
        const value = JSON.parse(fs.readFileSync(connectionFilePath(workspace), 'utf8')) as Partial<RuntimeConnectionFile>;
        if (typeof value.port !== 'number' || typeof value.token !== 'string' || typeof value.pid !== 'number') return undefined;
        return value as RuntimeConnectionFile;
    } catch {
        return undefined;
    }
}

/** The connection file of a server that still runs, if any. */
export function liveServer(workspace: string): RuntimeConnectionFile | undefined {
    const file = readConnectionFile(workspace);
    return file && file.pid !== process.pid && processAlive(file.pid) ? file : undefined;
}

/** Removes the file if it is still this process's. */
export function removeConnectionFile(workspace: string): void {
    const file = readConnectionFile(workspace);
    if (file && file.pid !== process.pid) return;
    fs.rmSync(connectionFilePath(workspace), { force: true });
}
