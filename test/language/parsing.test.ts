/**
 * Parsing: the brief's examples parse cleanly; a typo in one member is reported with
 * its location and does not hide the members after it; garbage never makes the
 * language services throw.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EmptyFileSystem, type LangiumDocument } from 'langium';
import { parseHelper } from 'langium/test';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { URI } from 'vscode-uri';
import type * as ast from '../../language-server/generated/ast.js';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { diagnosticCode } from '../../language-server/src/aimatrix-document-validator.js';
import { IssueCodes } from '../../language-server/src/issue-codes.js';

const services = createAiMatrixServices(EmptyFileSystem);
const parseTwin = parseHelper<ast.TwinFile>(services.twin);
const parseAgent = parseHelper<ast.AgentFile>(services.agent);

const BRIEF_BANK = `twin Bank {
  param tellers = 3
  resource Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 1 min) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: 2.7 min)
    release Teller
  }
  kpi wait = mean(waitTime(Serve)) in min
  kpi busy = utilization(Teller)
}

experiment Baseline for Bank {
  horizon 8 h  warmup 1 h  replications 30  seed 7
  sweep tellers in [3, 4]
}
`;

const AGENT_FILE = `import "bank.twin"

// Staff the branch: managers watch the queue, a forecaster predicts arrivals.
system BranchOps observes Bank {
  channel QueueAlert { length: int, since: duration, note: string }
  channel Ack

  agent Manager {
    state open = 3
    state alarmed = false
    every 5 min {
      let q = open * 2
      if q > 4 and not alarmed {
        send QueueAlert { length: q, since: 5 min, note: "long queue" }
      } else {
        log "quiet"
      }
    }
    on QueueAlert as alert {
      set open += 1
      set alarmed = alert.length > 10
    }
    when alarmed { set alarmed = false }
  }

  swarm Managers of Manager count 3
  coordinator Chair over Managers strategy consensus heartbeat 2 s

  model Forecaster {
    file "models/forecast.onnx"
    input x: float32 [N, 4]
    input "hour of day": int64 [N]
    output y: float32 [N, 1]
    providers cuda, webgpu, cpu
    batch 32 wait 5 ms
    cache 1000 ttl 1 min
  }

  decision Staffing {
    criterion cost weight 0.6 minimize
    criterion wait weight 0.4 minimize
    option Hire { cost: 3, wait: 1 }
    option Wait { cost: 0, wait: 5 }
  }
}
`;

function errors(document: LangiumDocument): string[] {
    return [...document.parseResult.lexerErrors.map(e => e.message), ...document.parseResult.parserErrors.map(e => e.message)];
}

describe('clean files', () => {
    it('parses the bank of the brief', async () => {
        const document = await parseTwin(BRIEF_BANK);
        expect(errors(document)).toEqual([]);
        const [bank, experiment] = document.parseResult.value.elements as [ast.Twin, ast.Experiment];
        expect(bank.name).toBe('Bank');
        expect(bank.members.map(m => m.$type)).toEqual(['Param', 'Resource', 'Entity', 'Source', 'Process', 'Kpi', 'Kpi']);
        const serve = bank.members[4] as ast.Process;
        expect(serve.steps.map(s => s.$type)).toEqual(['SeizeStep', 'DelayStep', 'ReleaseStep']);
        expect(experiment.settings.map(s => s.$type)).toEqual(['Horizon', 'Warmup', 'Replications', 'Seed', 'Sweep']);
    });

    it('parses a representative agent file', async () => {
        const document = await parseAgent(AGENT_FILE);
        expect(errors(document)).toEqual([]);
        const system = document.parseResult.value.systems[0];
        expect(system.members.map(m => m.$type)).toEqual(['Channel', 'Channel', 'Agent', 'Swarm', 'Coordinator', 'Model', 'Decision']);
        const model = system.members[5] as ast.Model;
        const tensors = model.settings.filter((s): s is ast.TensorSpec => s.$type === 'TensorSpec');
        expect(tensors.map(t => [t.kind, t.name, t.elementType, t.dims.map(d => d.symbol ?? d.size)])).toEqual([
            ['input', 'x', 'float32', ['N', 4]],
            ['input', 'hour of day', 'int64', ['N']],
            ['output', 'y', 'float32', ['N', 1]]
        ]);
    });

    it('parses every example of the workspace without syntax errors', async () => {
        const root = path.resolve(__dirname, '../../examples');
        const files = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.twin') || f.endsWith('.agent'));
        expect(files.length).toBeGreaterThanOrEqual(2);
        for (const file of files) {
            const text = fs.readFileSync(path.join(root, file), 'utf8');
            const document = file.endsWith('.twin') ? await parseTwin(text) : await parseAgent(text);
            expect(errors(document), file).toEqual([]);
        }
    });
});

describe('error recovery', () => {
    const TYPO = `twin Bank {
  param tellers = 3
  resorce Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 1 min) into Serve
  process Serve for Customer {
    delay 1 min
  }
  kpi done = completed(Serve)
}
`;

    it('keeps the members after a typo and reports it where it is', async () => {
        const document = await parseTwin(TYPO, { validation: true });
        const bank = document.parseResult.value.elements[0] as ast.Twin;
        const names = bank.members.map(m => (m as { name?: string }).name);
        expect(names).toContain('tellers');
        expect(names).toContain('Customer');
        expect(names).toContain('Serve');
        expect(names).toContain('done');
        const syntax = (document.diagnostics ?? []).filter(d => diagnosticCode(d) === IssueCodes.SyntaxError);
        expect(syntax.length).toBeGreaterThan(0);
        expect(syntax[0].range.start.line).toBe(2);
        expect(syntax[0].message.length).toBeGreaterThan(0);
    });

    it('keeps the steps after a broken step', async () => {
        const document = await parseTwin(`twin T {
  entity E
  process P for E {
    delay 1 min
    sieze R
    delay 2 min
    dispose
  }
}`, { validation: true });
        const process = (document.parseResult.value.elements[0] as ast.Twin).members.find(m => m.$type === 'Process') as ast.Process;
        expect(process.steps.map(s => s.$type)).toContain('DisposeStep');
        const syntax = (document.diagnostics ?? []).filter(d => diagnosticCode(d) === IssueCodes.SyntaxError);
        expect(syntax[0]?.range.start.line).toBe(4);
    });

    it('keeps the agents after a broken behaviour', async () => {
        const document = await parseAgent(`system S {
  agent A {
    every 1 min { set x = }
  }
  agent B { state y = 1 }
  channel C
}`, { validation: true });
        const system = document.parseResult.value.systems[0];
        expect(system.members.map(m => m.name)).toEqual(expect.arrayContaining(['A', 'B', 'C']));
        expect((document.diagnostics ?? []).some(d => diagnosticCode(d) === IssueCodes.SyntaxError)).toBe(true);
    });

    it('reports an unknown character as a lexing error', async () => {
        const document = await parseTwin('twin T { param p = 3 § }', { validation: true });
        expect((document.diagnostics ?? []).map(diagnosticCode)).toContain(IssueCodes.LexingError);
    });
});

describe('garbage', () => {
    const NASTY = [
        '',
        ' ',
        '}}}}}}',
        '{{{{{{{{',
        'twin',
        'twin {',
        'twin T { process P for { seize',
        'experiment for { set = }',
        'system S observes { agent { on as { } } }',
        'twin T { branch prob when otherwise }',
        'import import import "',
        '"unterminated',
        '/* unterminated comment',
        '\u0000\u0001\u0002\uFFFF',
        '🙂 twin 🙂 { }',
        'twin T { param p = 1e999999 param q = -1e-999999 param r = .5e }',
        'system S { model M { input : [ , ] output "": float99 [N,,] file } }',
        'twin T { source S creates creates every every into into }',
        'system S { channel C { v: } agent A { state x = 1  on C as m { set x = m.v + 1  send C { v: m.v * 2 } } } }',
        'system S { channel C { v: numbr, w: number } agent A { state x = 1  on C as m { set x = m.v + 1  send C { v: m.v * 2, w: 1 } } } }',
        'system S { channel C { v: number w } agent A { state x = 1  on C as m { set x = m.w + 1  send C { w: m.w * 2 } } } }',
        'twin T {\n'.repeat(300),
        Array.from({ length: 200 }, (_, i) => String.fromCharCode((i * 7919) % 128)).join('')
    ];

    /** Well-formed but extreme twins: deep nesting and long chains must not overflow anything. */
    const EXTREME = [
        'twin T { kpi k = ' + '('.repeat(50) + '1' + ')'.repeat(50) + ' }',
        'twin T { param p = ' + '1 + '.repeat(2000) + '1 }'
    ];

    for (const [i, text] of EXTREME.entries()) {
        it(`handles extreme but valid twin #${i}`, async () => {
            const local = createAiMatrixServices(EmptyFileSystem);
            const document = local.shared.workspace.LangiumDocumentFactory.fromString(text, URI.file(`/extreme/${i}.twin`));
            local.shared.workspace.LangiumDocuments.addDocument(document);
            await local.shared.workspace.DocumentBuilder.build([document], { validation: true });
            expect(document.diagnostics).toEqual([]);
        });
    }

    for (const [i, text] of NASTY.entries()) {
        for (const ext of ['twin', 'agent'] as const) {
            it(`survives garbage #${i} as a .${ext} file`, async () => {
                // Langium catches an exception in a check and logs it: that is a crash of the check all the same.
                const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
                onTestFinished(() => logged.mockRestore());
                const local = createAiMatrixServices(EmptyFileSystem);
                const document = local.shared.workspace.LangiumDocumentFactory.fromString(text, URI.file(`/garbage/${i}.${ext}`));
                local.shared.workspace.LangiumDocuments.addDocument(document);
                await local.shared.workspace.DocumentBuilder.build([document], { validation: true });
                expect(Array.isArray(document.diagnostics)).toBe(true);
                if (text.trim().length > 0 && !text.startsWith('/*')) {
                    // Something was wrong with every non-empty string here; it must be said, not swallowed.
                    expect(document.diagnostics!.length + (text === ' ' ? 1 : 0)).toBeGreaterThan(0);
                }
                const lang = ext === 'twin' ? local.twin : local.agent;
                const position = { line: 0, character: Math.min(3, text.length) };
                await lang.lsp.CompletionProvider?.getCompletion(document, { textDocument: { uri: document.uri.toString() }, position });
                await lang.lsp.HoverProvider?.getHoverContent(document, { textDocument: { uri: document.uri.toString() }, position });
                await lang.lsp.DocumentSymbolProvider?.getSymbols(document, { textDocument: { uri: document.uri.toString() } });
                expect(logged.mock.calls.map(c => String(c[0]))).toEqual([]);
            });
        }
    }
});
