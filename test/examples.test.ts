/**
 * The example workspace, the language reference and the editor assets that work before
 * the server starts:
 * - every example folder checks clean (no error, no warning) through `checkPaths`, and
 *   together the examples use every keyword of both grammars;
 * - every ```twin / ```agent block of docs/language.md parses without a syntax error,
 *   and the reference covers every keyword and every built-in function;
 * - the TextMate grammars, language configuration and snippets are valid, agree with
 *   the manifest, highlight every keyword and built-in, and every snippet expands to
 *   code that parses;
 * - the warehouse's ONNX model is a valid model whose inputs and outputs are exactly
 *   what replenishment.agent declares, and its generator reproduces it byte for byte.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AstUtils, CstUtils, EmptyFileSystem, GrammarAST, isLeafCstNode, URI, type AstNode, type Grammar } from 'langium';
import { onnx } from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { AgentLanguageGrammar, TwinLanguageGrammar } from '../language-server/generated/grammar.js';
import * as ast from '../language-server/generated/ast.js';
import { createAiMatrixServices } from '../language-server/src/aimatrix-module.js';
import { BUILTINS } from '../language-server/src/builtins.js';
import { checkPaths } from '../language-server/src/index.js';

const ROOT = path.resolve(__dirname, '..');
const EXAMPLES = path.join(ROOT, 'examples');
const REQUIRED_EXAMPLES = ['bank', 'epidemic', 'warehouse', 'swarm', 'montecarlo'];

const services = createAiMatrixServices(EmptyFileSystem);

type Language = 'twin' | 'agent';

interface Parsed {
    root: AstNode;
    errors: string[];
}

function parse(text: string, language: Language): Parsed {
    const result = services[language].parser.LangiumParser.parse(text);
    const errors = [
        ...result.lexerErrors.map(e => `lexing error at line ${e.line ?? '?'}: ${e.message}`),
        ...result.parserErrors.map(e => `syntax error at line ${e.token.startLine ?? '?'} ('${e.token.image}'): ${e.message}`)
    ];
    return { root: result.value, errors };
}

function readText(file: string): string {
    return fs.readFileSync(file, 'utf8');
}

function exampleFolders(): string[] {
    return fs.readdirSync(EXAMPLES, { withFileTypes: true }).filter(e => e.isDirectory()).map(e => e.name).sort();
}

function sourceFiles(folder: string): string[] {
    const out: string[] = [];
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
        const full = path.join(folder, entry.name);
        if (entry.isDirectory()) out.push(...sourceFiles(full));
        else if (entry.name.endsWith('.twin') || entry.name.endsWith('.agent')) out.push(full);
    }
    return out;
}

function languageOf(file: string): Language {
    return file.endsWith('.agent') ? 'agent' : 'twin';
}

/** The rule a keyword is written in. */
function ruleOf(keyword: GrammarAST.Keyword): string | undefined {
    return AstUtils.getContainerOfType(keyword, GrammarAST.isParserRule)?.name;
}

/**
 * Every keyword of both grammars, except those of the `Name` rule (keywords that may also
 * be used as names are listed there a second time; each also appears in its own rule).
 */
function grammarKeywords(): Set<string> {
    const keywords = new Set<string>();
    const grammars: Grammar[] = [TwinLanguageGrammar(), AgentLanguageGrammar()];
    for (const grammar of grammars) {
        for (const node of AstUtils.streamAllContents(grammar)) {
            if (GrammarAST.isKeyword(node) && ruleOf(node) !== 'Name') keywords.add(node.value);
        }
    }
    return keywords;
}

/** The keywords a parsed file uses as keywords (not as names), read from its CST. */
function usedKeywords(root: AstNode, into: Set<string>): void {
    if (!root.$cstNode) return;
    for (const node of CstUtils.streamCst(root.$cstNode)) {
        if (!isLeafCstNode(node) || node.hidden) continue;
        const source = node.grammarSource;
        if (GrammarAST.isKeyword(source) && ruleOf(source) !== 'Name') into.add(source.value);
        // Operators of the `infix` rule: their leaves belong to the binary expression itself.
        if (node.astNode.$type === 'BinaryExpr' && !GrammarAST.isKeyword(source)) into.add(node.text);
    }
}

/** The keywords of one datatype rule (an enumeration such as `ElementType`). */
function keywordsOfRule(name: string): string[] {
    const rule = TwinLanguageGrammar().rules.find(r => r.name === name);
    if (!rule) throw new Error(`no rule ${name}`);
    return AstUtils.streamAllContents(rule).filter(GrammarAST.isKeyword).map(k => k.value).toArray();
}

// ------------------------------------------------------------------ examples

describe('the example workspace', () => {
    it('has the five required examples, each with a README and at least one source file', () => {
        const folders = exampleFolders();
        expect(folders).toEqual(expect.arrayContaining(REQUIRED_EXAMPLES));
        for (const folder of folders) {
            const dir = path.join(EXAMPLES, folder);
            expect(fs.existsSync(path.join(dir, 'README.md')), `${folder}/README.md`).toBe(true);
            expect(readText(path.join(dir, 'README.md'))).toMatch(/KPI/);
            expect(sourceFiles(dir).length, `${folder} has no .twin or .agent file`).toBeGreaterThan(0);
        }
    });

    for (const folder of exampleFolders()) {
        it(`examples/${folder} checks with no error and no warning`, async () => {
            const result = await checkPaths([path.join(EXAMPLES, folder)], { cwd: ROOT });
            const shown = result.diagnostics.map(d => `${d.file}:${d.line}:${d.column} ${d.severity} ${d.code} ${d.message}`);
            expect(shown).toEqual([]);
            expect(result.errors).toBe(0);
            expect(result.warnings).toBe(0);
            // The documents were really read: each file of the folder is among them.
            const loaded = result.documents.map(d => d.uri.fsPath);
            for (const file of sourceFiles(path.join(EXAMPLES, folder))) expect(loaded).toContain(file);
        });
    }

    it('links across files: the warehouse and swarm twins populate themselves with agents of the system that observes them', async () => {
        const result = await checkPaths([path.join(EXAMPLES, 'warehouse'), path.join(EXAMPLES, 'swarm')], { cwd: ROOT });
        const roots = result.documents.map(d => d.parseResult.value);
        const twins = roots.filter(ast.isTwinFile).flatMap(r => r.elements).filter(ast.isTwin);
        const systems = roots.filter(ast.isAgentFile).flatMap(r => r.systems);
        for (const name of ['Warehouse', 'Sky']) {
            const twin = twins.find(t => t.name === name);
            expect(twin, name).toBeDefined();
            const populations = twin!.members.filter(ast.isPopulation);
            expect(populations.length).toBeGreaterThan(0);
            for (const population of populations) {
                const agent = population.agent.ref;
                expect(agent, `${name}.${population.name}`).toBeDefined();
                const system = AstUtils.getContainerOfType(agent, ast.isSystem);
                expect(system?.twin?.ref).toBe(twin);
                expect(AstUtils.getDocument(agent!).uri.fsPath.endsWith('.agent')).toBe(true);
            }
        }
        expect(systems.map(s => s.name).sort()).toEqual(['Flocking', 'Replenishment']);
    });

    it('uses every keyword of both grammars at least once', () => {
        const used = new Set<string>();
        for (const file of sourceFiles(EXAMPLES)) {
            const { root, errors } = parse(readText(file), languageOf(file));
            expect(errors, file).toEqual([]);
            usedKeywords(root, used);
        }
        // Element types are an enumeration that a model declares as its ONNX file dictates;
        // the reference (below) shows each of them.
        const elementTypes = new Set(keywordsOfRule('ElementType').filter(k => !['bool', 'string'].includes(k)));
        const missing = [...grammarKeywords()].filter(k => !used.has(k) && !elementTypes.has(k)).sort();
        expect(missing).toEqual([]);
    });
});

// ------------------------------------------------------------------ the language reference

interface DocBlock {
    language: Language;
    line: number;
    text: string;
}

function docBlocks(): DocBlock[] {
    const text = readText(path.join(ROOT, 'docs', 'language.md'));
    const blocks: DocBlock[] = [];
    const fence = /^```(twin|agent)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
    for (let m = fence.exec(text); m; m = fence.exec(text)) {
        blocks.push({ language: m[1] as Language, line: text.slice(0, m.index).split('\n').length, text: m[2] });
    }
    return blocks;
}

describe('docs/language.md', () => {
    let loaded: DocBlock[] | undefined;
    const blocks = (): DocBlock[] => (loaded ??= docBlocks());

    it('has examples in both languages', () => {
        expect(blocks().filter(b => b.language === 'twin').length).toBeGreaterThan(20);
        expect(blocks().filter(b => b.language === 'agent').length).toBeGreaterThan(8);
    });

    it('has only examples that parse without a syntax error', () => {
        const failures: string[] = [];
        for (const block of blocks()) {
            const { errors } = parse(block.text, block.language);
            if (errors.length > 0) failures.push(`docs/language.md:${block.line} (${block.language}): ${errors.join('; ')}`);
        }
        expect(failures).toEqual([]);
    });

    it('has only examples that also pass validation, but for the files they name and do not have', async () => {
        // The examples are standalone: an import or a model file they mention does not exist
        // next to them. Nothing else may be reported.
        const external = new Set(['import-not-found', 'model-file-missing', 'model-without-file']);
        const failures: string[] = [];
        let index = 0;
        for (const block of blocks()) {
            const uri = URI.parse(`file:///docs-language/block${index++}.${block.language}`);
            const document = services.shared.workspace.LangiumDocumentFactory.fromString(block.text, uri);
            services.shared.workspace.LangiumDocuments.addDocument(document);
            await services.shared.workspace.DocumentBuilder.build([document], { validation: true });
            const imports = /^import /m.test(block.text);
            for (const d of document.diagnostics ?? []) {
                if (d.severity !== 1 && d.severity !== 2) continue;
                const code = String(d.code);
                if (external.has(code) || (imports && code === 'unresolved-reference')) continue;
                failures.push(`docs/language.md:${block.line + 1 + d.range.start.line} ${code} ${d.message}`);
            }
        }
        expect(failures).toEqual([]);
    });

    it('shows every keyword of both grammars in an example', () => {
        const used = new Set<string>();
        for (const block of blocks()) usedKeywords(parse(block.text, block.language).root, used);
        expect([...grammarKeywords()].filter(k => !used.has(k)).sort()).toEqual([]);
    });

    it('documents every built-in function with each of its parameters', () => {
        const text = readText(path.join(ROOT, 'docs', 'language.md'));
        const missing: string[] = [];
        for (const builtin of BUILTINS) {
            // Its row in a table of the reference: | `name(params)` | parameters | result |
            const row = new RegExp(`^\\|\\s*\`${builtin.name}\\([^\\n]*$`, 'm').exec(text);
            if (!row) {
                missing.push(builtin.name);
                continue;
            }
            for (const param of builtin.overloads.flat()) {
                if (!new RegExp(`\`${param.name}\``).test(row[0])) missing.push(`${builtin.name}(${param.name})`);
            }
        }
        expect(missing).toEqual([]);
    });
});

// ------------------------------------------------------------------ editor assets

interface Manifest {
    contributes: {
        languages: { id: string; configuration: string }[];
        grammars: { language: string; scopeName: string; path: string }[];
        snippets: { language: string; path: string }[];
    };
}

interface TmRule {
    name?: string;
    match?: string;
    begin?: string;
    end?: string;
    include?: string;
    patterns?: TmRule[];
    captures?: Record<string, { name?: string }>;
    beginCaptures?: Record<string, { name?: string }>;
}

interface TmGrammar {
    scopeName: string;
    name: string;
    fileTypes?: string[];
    patterns: TmRule[];
    repository: Record<string, TmRule>;
}

const manifest = JSON.parse(readText(path.join(ROOT, 'package.json'))) as Manifest;

function readJson<T>(relative: string): T {
    return JSON.parse(readText(path.join(ROOT, relative))) as T;
}

/** Every rule of a TextMate grammar, flattened. */
function allRules(grammar: TmGrammar): TmRule[] {
    const out: TmRule[] = [];
    const visit = (rule: TmRule): void => {
        out.push(rule);
        for (const p of rule.patterns ?? []) visit(p);
    };
    for (const p of grammar.patterns) visit(p);
    for (const r of Object.values(grammar.repository)) visit(r);
    return out;
}

/**
 * The scopes a grammar's `match` rules give to `word` where it occurs in `text` (a rule's
 * own name when it matches exactly the word, or the name of a capture that is the word).
 * Patterns are tried one by one, not in TextMate's order: this tells whether some rule
 * scopes the word, which is what a missing keyword would lack.
 */
function scopesOfWord(grammar: TmGrammar, word: string, text = ` ${word} `): string[] {
    const scopes: string[] = [];
    for (const rule of allRules(grammar)) {
        if (!rule.match) continue;
        const re = new RegExp(rule.match, 'g');
        for (let m = re.exec(text); m; m = re.exec(text)) {
            if (m[0] === word && rule.name) scopes.push(rule.name);
            for (const [index, capture] of Object.entries(rule.captures ?? {})) {
                if (m[Number(index)] === word && capture.name) scopes.push(capture.name);
            }
            if (m[0].length === 0) re.lastIndex++;
        }
    }
    return scopes;
}

/** Where a keyword is tried: units after a number, `per` in a rate, others on their own. */
function keywordContext(keyword: string, units: readonly string[]): string {
    if (units.includes(keyword)) return ` 2 ${keyword} `;
    if (keyword === 'per') return ' 30 per h ';
    return ` ${keyword} `;
}

describe('TextMate grammars', () => {
    for (const contribution of manifest.contributes.grammars) {
        let loaded: TmGrammar | undefined;
        const tm = (): TmGrammar => (loaded ??= readJson<TmGrammar>(contribution.path));

        it(`${contribution.path} is valid JSON with the manifest's scope name, and every pattern compiles`, () => {
            expect(tm().scopeName).toBe(contribution.scopeName);
            expect(tm().scopeName).toBe(`source.aimatrix.${contribution.language}`);
            for (const rule of allRules(tm())) {
                for (const source of [rule.match, rule.begin, rule.end]) {
                    if (source !== undefined) expect(() => new RegExp(source), source).not.toThrow();
                }
                if (rule.include?.startsWith('#')) {
                    expect(tm().repository[rule.include.slice(1)], rule.include).toBeDefined();
                }
            }
        });

        it(`${contribution.path} highlights every keyword and every built-in`, () => {
            const unscoped: string[] = [];
            const units = keywordsOfRule('TimeUnit');
            for (const keyword of grammarKeywords()) {
                if (!/^[a-z]/.test(keyword)) continue;
                const scopes = scopesOfWord(tm(), keyword, keywordContext(keyword, units));
                if (!scopes.some(s => /^(keyword|storage|constant|support|entity)\./.test(s))) unscoped.push(keyword);
            }
            expect(unscoped).toEqual([]);
            for (const builtin of BUILTINS) {
                expect(scopesOfWord(tm(), builtin.name, ` ${builtin.name}(x) `).some(s => s.startsWith('support.function')), builtin.name).toBe(true);
            }
            // declarations and control flow are told apart
            for (const declaration of ['twin', 'process', 'stock', 'agent', 'system', 'model']) {
                expect(scopesOfWord(tm(), declaration).some(s => s.startsWith('storage.type')), declaration).toBe(true);
            }
            for (const control of ['if', 'else', 'when', 'branch', 'route', 'every', 'on']) {
                expect(scopesOfWord(tm(), control).some(s => s.startsWith('keyword.control')), control).toBe(true);
            }
            expect(scopesOfWord(tm(), 'Serve', ' process Serve for Customer ').some(s => s.startsWith('entity.name'))).toBe(true);
            expect(scopesOfWord(tm(), 'tellers', ' param tellers = 3 ').some(s => s.startsWith('entity.name'))).toBe(true);
            expect(scopesOfWord(tm(), '+=', ' set x += 1 ').some(s => s.startsWith('keyword.operator'))).toBe(true);
        });

        it(`${contribution.path} scopes comments, strings, quantities with units and declared names`, () => {
            const named = allRules(tm());
            const find = (scope: RegExp) => named.filter(r => r.name !== undefined && scope.test(r.name));
            expect(find(/^comment\.line\.double-slash/).length).toBeGreaterThan(0);
            expect(find(/^comment\.block/).some(r => r.begin === '/\\*' && r.end === '\\*/')).toBe(true);
            expect(find(/^string\.quoted\.double/).length).toBeGreaterThan(0);

            const quantity = named.find(r => r.match && r.captures && Object.values(r.captures).some(c => c.name?.startsWith('keyword.other.unit')));
            expect(quantity, 'a rule for a number with its unit').toBeDefined();
            const q = new RegExp(quantity!.match!).exec('2.7 per min');
            expect(q?.[0]).toBe('2.7 per min');

            const declaration = named.find(r => r.match && r.captures &&
                Object.values(r.captures).some(c => c.name?.startsWith('entity.name')) &&
                new RegExp(r.match).test('process Serve'));
            expect(declaration, 'a rule naming what follows a declaration keyword').toBeDefined();
        });
    }
});

describe('language configuration', () => {
    for (const language of manifest.contributes.languages) {
        it(`${language.configuration} declares comments, brackets, pairs, indentation and folding`, () => {
            interface Config {
                comments: { lineComment: string; blockComment: [string, string] };
                brackets: [string, string][];
                autoClosingPairs: { open: string; close: string }[];
                surroundingPairs: [string, string][];
                indentationRules: { increaseIndentPattern: string; decreaseIndentPattern: string };
                folding: { markers: { start: string; end: string } };
            }
            const config = readJson<Config>(language.configuration);
            expect(config.comments).toEqual({ lineComment: '//', blockComment: ['/*', '*/'] });
            expect(config.brackets).toEqual(expect.arrayContaining([['{', '}'], ['[', ']'], ['(', ')']]));
            expect(config.autoClosingPairs.map(p => p.open + p.close)).toEqual(expect.arrayContaining(['{}', '[]', '()', '""']));
            const increase = new RegExp(config.indentationRules.increaseIndentPattern);
            const decrease = new RegExp(config.indentationRules.decreaseIndentPattern);
            expect(increase.test('  process Serve for Customer {')).toBe(true);
            expect(increase.test('  seize Teller')).toBe(false);
            expect(decrease.test('  }')).toBe(true);
            expect(decrease.test('  release Teller')).toBe(false);
            expect(new RegExp(config.folding.markers.start).test('  // #region arrivals')).toBe(true);
            expect(new RegExp(config.folding.markers.end).test('  // #endregion')).toBe(true);
        });
    }
});

interface Snippet {
    prefix: string | string[];
    body: string | string[];
    description: string;
}

/** A snippet's body with every placeholder replaced by its default text (or a name). */
function expandSnippet(body: string | string[]): string {
    let text = Array.isArray(body) ? body.join('\n') : body;
    for (let i = 0; i < 5; i++) {
        text = text
            .replace(/\$\{\d+\|([^,|}]*)[^}]*\|\}/g, '$1')       // ${1|a,b|} -> a
            .replace(/\$\{\d+:([^${}]*)\}/g, '$1')               // ${1:text} -> text
            .replace(/\$\{\d+\}/g, 'x1')                          // ${1} -> a name
            .replace(/\$\d+/g, '');                               // $0 -> nothing
    }
    return text.replace(/\\\$/g, '$').replace(/\\\}/g, '}');
}

const SNIPPET_CONTEXTS: Record<Language, ((s: string) => string)[]> = {
    twin: [s => s, s => `twin T {\n${s}\n}`, s => `twin T {\n process P for E {\n${s}\n }\n}`, s => `experiment X for T {\n${s}\n}`],
    agent: [s => s, s => `system S {\n${s}\n}`, s => `system S {\n agent A {\n${s}\n }\n}`,
        s => `system S {\n agent A {\n every 1 s {\n${s}\n }\n }\n}`]
};

describe('snippets', () => {
    for (const contribution of manifest.contributes.snippets) {
        const language = contribution.language as Language;
        const snippetsOf = (): Record<string, Snippet> => readJson<Record<string, Snippet>>(contribution.path);

        it(`${contribution.path} is valid JSON, for a language of the manifest`, () => {
            expect(manifest.contributes.languages.map(l => l.id)).toContain(language);
            expect(Object.keys(snippetsOf()).length).toBeGreaterThan(5);
            for (const [name, s] of Object.entries(snippetsOf())) {
                expect(s.prefix, name).toBeTruthy();
                expect(s.description, name).toBeTruthy();
                expect(expandSnippet(s.body), name).toMatch(/\S/);
                expect(Array.isArray(s.body) ? s.body.join('\n') : s.body, `${name} has no tab stop`).toMatch(/\$\{?1/);
            }
        });

        it(`every snippet of ${contribution.path} expands to code that parses`, () => {
            const failures: string[] = [];
            for (const [name, s] of Object.entries(snippetsOf())) {
                const code = expandSnippet(s.body);
                const ok = SNIPPET_CONTEXTS[language].some(wrap => parse(wrap(code), language).errors.length === 0);
                if (!ok) failures.push(`${name}: ${parse(SNIPPET_CONTEXTS[language][1](code), language).errors.join('; ')}\n${code}`);
            }
            expect(failures).toEqual([]);
        });
    }

    it('cover the main constructs of both languages', () => {
        const prefixes = manifest.contributes.snippets.flatMap(c =>
            Object.values(readJson<Record<string, Snippet>>(c.path)).flatMap(s => Array.isArray(s.prefix) ? s.prefix : [s.prefix]));
        for (const construct of ['twin', 'experiment', 'process', 'source', 'resource', 'stock', 'system', 'agent', 'channel', 'model', 'decision', 'swarm', 'coordinator']) {
            expect(prefixes, construct).toContain(construct);
        }
    });
});

// ------------------------------------------------------------------ the warehouse's ONNX model

const ELEMENT_TYPES: Record<string, number> = {
    float32: onnx.TensorProto.DataType.FLOAT, float16: onnx.TensorProto.DataType.FLOAT16,
    float64: onnx.TensorProto.DataType.DOUBLE, int8: onnx.TensorProto.DataType.INT8,
    int16: onnx.TensorProto.DataType.INT16, int32: onnx.TensorProto.DataType.INT32,
    int64: onnx.TensorProto.DataType.INT64, uint8: onnx.TensorProto.DataType.UINT8,
    uint16: onnx.TensorProto.DataType.UINT16, uint32: onnx.TensorProto.DataType.UINT32,
    uint64: onnx.TensorProto.DataType.UINT64, bool: onnx.TensorProto.DataType.BOOL,
    string: onnx.TensorProto.DataType.STRING
};

describe('the warehouse demand-forecast model', () => {
    const agentFile = path.join(EXAMPLES, 'warehouse', 'replenishment.agent');

    function declaredModel(): ast.Model {
        const { root, errors } = parse(readText(agentFile), 'agent');
        expect(errors).toEqual([]);
        const model = AstUtils.streamAllContents(root).filter(ast.isModel).find(m => m.name === 'DemandForecast');
        expect(model).toBeDefined();
        return model!;
    }

    function modelPath(model: ast.Model): string {
        const file = model.settings.find(ast.isModelFile);
        expect(file).toBeDefined();
        return path.resolve(path.dirname(agentFile), file!.path);
    }

    /** The decoded graph, with the parts the tests read made non-optional (a missing part fails here). */
    function graphOf(model: ast.Model): {
        nodes: onnx.INodeProto[]; initializers: onnx.ITensorProto[]; inputs: onnx.IValueInfoProto[]; outputs: onnx.IValueInfoProto[]; opsets: number;
    } {
        const decoded = onnx.ModelProto.decode(fs.readFileSync(modelPath(model)));
        const graph = decoded.graph;
        expect(graph, 'the model has a graph').toBeTruthy();
        return {
            nodes: graph?.node ?? [], initializers: graph?.initializer ?? [], inputs: graph?.input ?? [],
            outputs: graph?.output ?? [], opsets: decoded.opsetImport?.length ?? 0
        };
    }

    it('is a valid ONNX model whose inputs and outputs are those declared', () => {
        const model = declaredModel();
        const graph = graphOf(model);
        expect(graph.nodes.length).toBeGreaterThan(0);
        expect(graph.opsets).toBeGreaterThan(0);

        const initializers = new Set(graph.initializers.map(t => t.name));
        const graphInputs = graph.inputs.filter(i => !initializers.has(i.name));
        const tensors = model.settings.filter(ast.isTensorSpec);
        for (const kind of ['input', 'output'] as const) {
            const declared = tensors.filter(t => t.kind === kind);
            const actual = kind === 'input' ? graphInputs : graph.outputs;
            expect(declared.length).toBeGreaterThan(0);
            expect(declared.map(t => t.name).sort()).toEqual(actual.map(v => v.name).sort());
            for (const spec of declared) {
                const tensorType = actual.find(v => v.name === spec.name)?.type?.tensorType;
                expect(tensorType?.elemType, `${spec.name} element type`).toBe(ELEMENT_TYPES[spec.elementType]);
                const dims = (tensorType?.shape?.dim ?? []).map(d => d.dimParam ? d.dimParam : Number(d.dimValue));
                expect(dims, `${spec.name} shape`).toEqual(spec.dims.map(d => d.symbol ?? d.size));
            }
        }
    });

    it('computes the documented linear forecast', () => {
        const graph = graphOf(declaredModel());
        expect(graph.nodes.map(n => n.opType)).toEqual(['Gemm']);
        const values = (name: string | undefined): number[] => {
            const raw = graph.initializers.find(i => i.name === name)?.rawData ?? new Uint8Array();
            return Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
        };
        const [x, w, b] = graph.nodes[0].input ?? [];
        expect(x).toBe('features');
        // demand = 8 × orders per hour + 0.5 × weekday + 2 (examples/warehouse/README.md)
        const W = values(w);
        const B = values(b);
        expect(W.length).toBe(4);
        expect(B.length).toBe(1);
        const features = [12, 150, 0, 3];
        const demand = features.reduce((s, f, i) => s + f * W[i], B[0]);
        expect(demand).toBeCloseTo(8 * 12 + 0.5 * 3 + 2, 5);
    });

    it('is reproduced byte for byte by its generator', () => {
        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-model-')), 'demand.onnx');
        execFileSync(process.execPath, [path.join(EXAMPLES, 'warehouse', 'models', 'make-model.cjs'), out], { cwd: ROOT });
        expect(fs.readFileSync(out).equals(fs.readFileSync(modelPath(declaredModel())))).toBe(true);
    });
});
