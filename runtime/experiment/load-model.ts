/**
 * How a worker (and anything else that runs a model) gets a compiled twin from files:
 * check them with the language core, pick the twin the experiment is for, compile it.
 */
import * as path from 'node:path';
import { checkPaths } from '../../language-server/src/index.js';
import * as ast from '../../language-server/generated/ast.js';
import type { CompiledModel } from '../engine/api.js';
import { compileTwin } from '../engine/compile.js';
import { selectTarget } from './plan.js';

/** What the CLI hands its workers. */
export interface TwinSource {
    readonly file: string;
    readonly experiment?: string;
    /** Locations in errors and traces are relative to this folder. */
    readonly cwd: string;
}

export async function loadTwinModel(source: unknown): Promise<CompiledModel> {
    const { file, experiment, cwd } = source as TwinSource;
    const result = await checkPaths([file], { cwd });
    if (result.errors > 0) throw new Error(`${path.relative(cwd, file) || file} has ${result.errors} error${result.errors === 1 ? '' : 's'}`);
    const document = result.documents.find(d => path.resolve(d.uri.fsPath) === path.resolve(cwd, file));
    const root = document?.parseResult.value;
    if (!ast.isTwinFile(root)) throw new Error(`${file} is not a twin file`);
    // Systems that observe the twin run with it: those of the files it was loaded with (its imports).
    const systems = result.documents.map(d => d.parseResult.value).filter(ast.isAgentFile).flatMap(f => f.systems);
    return compileTwin(selectTarget(root, file, experiment).twin, { cwd, systems });
}
