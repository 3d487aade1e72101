/**
 * `models.list`: the ONNX files of the workspace with their inputs and outputs, read from
 * the model itself (onnx-proto). Folders that hold no user models are skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelInfo } from '../../protocol/index.js';
import { readOnnxMetadata } from '../../language-server/src/onnx-metadata.js';

const SKIP = new Set(['node_modules', '.git', '.aimatrix', 'dist', 'out', '.vscode-test']);
const MAX_FILES = 1000;
const MAX_DEPTH = 8;
/** Metadata is read from files up to this size (the graph's weights are in the same file). */
const MAX_READ = 256 * 1024 * 1024;

export function listModels(workspace: string): ModelInfo[] {
    const found: string[] = [];
    const walk = (dir: string, depth: number): void => {
        if (depth > MAX_DEPTH || found.length >= MAX_FILES) return;
        let entries: fs.Dirent[];
        try {
            entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
            return;
        }
        for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
            if (entry.isDirectory()) {
                if (!SKIP.has(entry.name) && !entry.name.startsWith('.')) walk(path.join(dir, entry.name), depth + 1);
            } else if (entry.isFile() && entry.name.toLowerCase().endsWith('.onnx')) {
                found.push(path.join(dir, entry.name));
            }
        }
    };
    walk(workspace, 0);
    return found.map(file => describe(workspace, file));
}

function describe(workspace: string, file: string): ModelInfo {
    const rel = path.relative(workspace, file).split(path.sep).join('/');
    let bytes = 0;
    try {
        bytes = fs.statSync(file).size;
        if (bytes > MAX_READ) return { file: rel, bytes, error: `larger than ${MAX_READ >> 20} MiB: metadata not read` };
        const meta = readOnnxMetadata(fs.readFileSync(file));
        const tensor = (t: { name: string; type: string; shape: ReadonlyArray<number | string> }) => ({ name: t.name, type: t.type, shape: [...t.shape] });
        return { file: rel, bytes, inputs: meta.inputs.map(tensor), outputs: meta.outputs.map(tensor) };
    } catch (error) {
        return { file: rel, bytes, error: error instanceof Error ? error.message : String(error) };
    }
}
