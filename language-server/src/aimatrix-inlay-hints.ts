/**
 * Inlay hints where something is implicit: the time unit of a flow rate written as a
 * plain number, a resource's default queue discipline, a model's default execution
 * provider, and the parameter name of a positional argument of a built-in.
 */
import { AstUtils, GrammarUtils, type AstNode } from 'langium';
import { AbstractInlayHintProvider, type InlayHintAcceptor } from 'langium/lsp';
import { InlayHintKind } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { findBuiltin } from './builtins.js';
import { activeParam, chooseOverload } from './call-context.js';
import { inferDim, isCount } from './units.js';

export class AiMatrixInlayHintProvider extends AbstractInlayHintProvider {

    computeInlayHint(node: AstNode, acceptor: InlayHintAcceptor): void {
        try {
            this.hint(node, acceptor);
        } catch {
            // a half-built node gives no hint
        }
    }

    private hint(node: AstNode, acceptor: InlayHintAcceptor): void {
        const end = (n: AstNode | undefined) => n?.$cstNode?.range.end;
        if (ast.isFlow(node) && node.rate && isCount(inferDim(node.rate))) {
            const position = end(node.rate);
            if (!position) return;
            const twin = AstUtils.getContainerOfType(node, ast.isTwin);
            const step = twin?.members.find(ast.isIntegration)?.step;
            const unit = ast.isQuantityLiteral(step) && step.unit && !step.unit.per ? step.unit.unit : 'time unit';
            acceptor({ position, label: `per ${unit}`, kind: InlayHintKind.Type, paddingLeft: true, tooltip: 'A flow rate written as a plain number is a count per model time unit (the unit of the integration step).' });
        } else if (ast.isResource(node) && node.discipline === undefined) {
            const position = end(node.capacity);
            if (position) acceptor({ position, label: 'queue fifo', kind: InlayHintKind.Parameter, paddingLeft: true, tooltip: 'The default queue discipline.' });
        } else if (ast.isModel(node) && !node.settings.some(ast.isProviderList)) {
            const anchor = node.settings.length > 0 ? end(node.settings[node.settings.length - 1]) : GrammarUtils.findNodeForKeyword(node.$cstNode, '{')?.range.end;
            if (anchor) acceptor({ position: anchor, label: 'providers cpu', kind: InlayHintKind.Parameter, paddingLeft: true, tooltip: 'The default execution provider.' });
        } else if (ast.isCallExpr(node)) {
            const builtin = findBuiltin(node.func);
            if (!builtin || node.args.length === 0) return;
            const names = node.args.map(a => a.name);
            const params = builtin.overloads[chooseOverload(builtin, names)] ?? [];
            node.args.forEach((arg, i) => {
                if (arg.name !== undefined) return;
                const param = params[activeParam(params, names, i)];
                const position = arg.$cstNode?.range.start;
                if (!param || !position) return;
                // A reference that already says the parameter's name needs no hint.
                if (ast.isRefExpr(arg.value) && arg.value.target?.$refText === param.name) return;
                acceptor({ position, label: `${param.name}:`, kind: InlayHintKind.Parameter, paddingRight: true });
            });
        }
    }
}
