/** Parsing twins (and the agent files they use) for engine tests. */
import { EmptyFileSystem, URI, type LangiumDocument } from 'langium';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import * as ast from '../../language-server/generated/ast.js';
import { compileTwin, type CompileOptions, type CompiledTwin } from '../../runtime/engine/compile.js';

export const services = createAiMatrixServices(EmptyFileSystem);
let counter = 0;

/**
 * Parses, links and validates files given as { 'name.twin': text, 'name.agent': text }
 * and returns the twin called `twinName` (or the first). Fails on errors. With `root`, the
 * files sit in that real folder (so relative model paths resolve); otherwise in memory.
 */
export async function parseTwin(files: Record<string, string> | string, twinName?: string, root?: string): Promise<ast.Twin> {
    const all = typeof files === 'string' ? { 'model.twin': files } : files;
    const dir = root ? URI.file(root).toString() : `file:///engine-test-${++counter}`;
    const docs: LangiumDocument[] = [];
    for (const [name, text] of Object.entries(all)) {
        const uri = URI.parse(`${dir}/${name}`);
        if (services.shared.workspace.LangiumDocuments.hasDocument(uri)) services.shared.workspace.LangiumDocuments.deleteDocument(uri);
        const doc = services.shared.workspace.LangiumDocumentFactory.fromString(text, uri);
        services.shared.workspace.LangiumDocuments.addDocument(doc);
        docs.push(doc);
    }
    await services.shared.workspace.DocumentBuilder.build(docs, { validation: true });
    const errors = docs.flatMap(d => (d.diagnostics ?? []).filter(x => x.severity === 1).map(x => `${d.uri.path}:${x.range.start.line + 1}: ${x.message}`));
    if (errors.length) throw new Error(`model has errors:\n${errors.join('\n')}`);
    for (const d of docs) {
        const root = d.parseResult.value;
        if (ast.isTwinFile(root)) {
            const twin = root.elements.filter(ast.isTwin).find(t => twinName === undefined || t.name === twinName);
            if (twin) return twin;
        }
    }
    throw new Error(`no twin ${twinName ?? ''}`);
}

export async function compile(files: Record<string, string> | string, options?: CompileOptions & { twin?: string; root?: string }): Promise<CompiledTwin> {
    return compileTwin(await parseTwin(files, options?.twin, options?.root), options);
}

/** Erlang C: probability of waiting and mean wait in queue for M/M/c (rates per unit time). */
export function erlangC(lambda: number, mu: number, c: number): { pWait: number; wq: number; lq: number } {
    const a = lambda / mu, rho = a / c;
    let sum = 0, term = 1;
    for (let k = 0; k < c; k++) { if (k > 0) term *= a / k; sum += term; }
    const top = term * a / c / (1 - rho);
    const pWait = top / (sum + top);
    const wq = pWait / (c * mu - lambda);
    return { pWait, wq, lq: lambda * wq };
}

/** Mean, standard deviation and 95% half-width (Student t) of a sample. */
export function summary(xs: readonly number[]): { mean: number; sd: number; half: number } {
    const n = xs.length;
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    const t: Record<number, number> = { 4: 2.776, 5: 2.571, 7: 2.365, 9: 2.262, 11: 2.201, 15: 2.131, 19: 2.093, 29: 2.045, 39: 2.023 };
    return { mean, sd, half: (t[n - 1] ?? 1.96) * sd / Math.sqrt(n) };
}
