/**
 * Semantic checks of both languages. Every diagnostic carries a code from `issue-codes.ts`.
 */
import type { ValidationAcceptor, ValidationChecks } from 'langium';
import type * as ast from '../generated/ast.js';
import type { AiMatrixServices } from './aimatrix-module.js';

export function registerValidationChecks(services: AiMatrixServices): void {
    const registry = services.validation.ValidationRegistry;
    const validator = services.validation.AiMatrixValidator;
    const checks: ValidationChecks<ast.AiMatrixAstType> = {
        Twin: validator.checkTwin
    };
    registry.register(checks, validator);
}

export class AiMatrixValidator {
    constructor(protected readonly services: AiMatrixServices) {}

    checkTwin(_twin: ast.Twin, _accept: ValidationAcceptor): void {
        // filled in below
    }
}
