/**
 * Signature help for built-in functions and distributions, on `(` and `,`. It reads
 * the call from the text (the call being typed rarely parses), shows every overload,
 * picks the one that fits the argument names written so far, and marks the active
 * parameter by the name typed (`rate: …`) or else by the position.
 */
import type { LangiumDocument } from 'langium';
import type { SignatureHelpProvider } from 'langium/lsp';
import type { SignatureHelp, SignatureHelpOptions, SignatureHelpParams, SignatureInformation } from 'vscode-languageserver';
import { builtinSignatures, findBuiltin } from './builtins.js';
import { activeParam, chooseOverload, findCallContext } from './call-context.js';

export class AiMatrixSignatureHelpProvider implements SignatureHelpProvider {

    provideSignatureHelp(document: LangiumDocument, params: SignatureHelpParams): SignatureHelp | undefined {
        const text = document.textDocument.getText();
        const call = findCallContext(text, document.textDocument.offsetAt(params.position));
        const builtin = call ? findBuiltin(call.func) : undefined;
        if (!call || !builtin) return undefined;
        const labels = builtinSignatures(builtin);
        const signatures: SignatureInformation[] = builtin.overloads.map((overload, i) => ({
            label: labels[i],
            documentation: { kind: 'markdown', value: builtin.doc },
            parameters: overload.map(p => ({
                label: p.optional ? `${p.name}?` : p.name,
                documentation: p.doc
            }))
        }));
        const activeSignature = chooseOverload(builtin, call.argNames);
        const parameters = builtin.overloads[activeSignature] ?? [];
        const active = parameters.length === 0 ? 0 : activeParam(parameters, call.argNames, call.argIndex);
        signatures[activeSignature].activeParameter = active;
        return { signatures, activeSignature, activeParameter: active };
    }

    get signatureHelpOptions(): SignatureHelpOptions {
        return { triggerCharacters: ['(', ','], retriggerCharacters: [','] };
    }
}
