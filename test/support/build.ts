/**
 * Makes sure the bundles in dist/ are built from the current sources before a test runs
 * them as child processes. Test files run in parallel workers, so the build is guarded by
 * a lock folder (mkdir is atomic) and skipped when every bundle is newer than every source.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

export const ROOT = path.resolve(__dirname, '..', '..');
const BUNDLES = ['dist/cli.cjs', 'dist/language-server.cjs', 'dist/worker.cjs'];
const SOURCES = ['language-server/src', 'language-server/generated', 'runtime', 'protocol', 'esbuild.mjs', 'package.json'];
const LOCK = path.join(ROOT, 'test', '.work', 'build.lock');

function newestMtime(target: string): number {
    let stat: fs.Stats;
    try {
        stat = fs.statSync(target);
    } catch {
        return 0;
    }
    if (!stat.isDirectory()) return stat.mtimeMs;
    let newest = 0;
    for (const entry of fs.readdirSync(target)) {
        newest = Math.max(newest, newestMtime(path.join(target, entry)));
    }
    return newest;
}

function upToDate(): boolean {
    const sources = Math.max(...SOURCES.map(s => newestMtime(path.join(ROOT, s))));
    return BUNDLES.every(b => {
        try {
            return fs.statSync(path.join(ROOT, b)).mtimeMs >= sources;
        } catch {
            return false;
        }
    });
}

function tryLock(): boolean {
    fs.mkdirSync(path.dirname(LOCK), { recursive: true });
    try {
        fs.mkdirSync(LOCK);
        return true;
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        // A lock left by a killed run: older than any build could take.
        if (Date.now() - fs.statSync(LOCK).mtimeMs > 120_000) {
            fs.rmSync(LOCK, { recursive: true, force: true });
        }
        return false;
    }
}

/** Builds dist/ with `node esbuild.mjs` unless it is already current. */
export async function ensureBuilt(): Promise<void> {
    for (;;) {
        if (upToDate()) return;
        if (tryLock()) break;
        // Another worker is building: wait for its lock to go away.
        await new Promise<void>(resolve => {
            const watcher = fs.watch(path.dirname(LOCK), () => {
                if (!fs.existsSync(LOCK)) done();
            });
            const timer = setInterval(() => { if (!fs.existsSync(LOCK)) done(); }, 200);
            function done(): void {
                watcher.close();
                clearInterval(timer);
                resolve();
            }
        });
    }
    try {
        if (!upToDate()) {
            await promisify(execFile)(process.execPath, ['esbuild.mjs'], { cwd: ROOT });
        }
    } finally {
        fs.rmSync(LOCK, { recursive: true, force: true });
    }
}
