/**
 * The combined module: one shared set of services and the two languages registered
 * on it. The twin and agent languages share one AST (see `grammar/aimatrix.langium`),
 * so they share the scoping, validation and editor services; each language module
 * only adds what differs.
 */
import { inject, type Module } from 'langium';
import {
    createDefaultModule, createDefaultSharedModule, type DefaultSharedModuleContext,
    type LangiumServices, type LangiumSharedServices, type PartialLangiumServices
} from 'langium/lsp';
import { AiMatrixGeneratedSharedModule, AgentLanguageGeneratedModule, TwinLanguageGeneratedModule } from '../generated/module.js';
import { AiMatrixBlockValidator } from './aimatrix-block-validator.js';
import { AiMatrixAstNodeDescriptionProvider, AiMatrixReferenceDescriptionProvider } from './aimatrix-descriptions.js';
import { AiMatrixDocumentFactory } from './aimatrix-document-factory.js';
import { AiMatrixLinker } from './aimatrix-linker.js';
import { createGuardedParser } from './aimatrix-parser-guard.js';
import { AiMatrixParserErrorMessageProvider } from './aimatrix-parser-messages.js';
import { AiMatrixScopeComputation } from './aimatrix-scope-computation.js';
import { AiMatrixScopeProvider } from './aimatrix-scope-provider.js';
import { AiMatrixValidator, registerValidationChecks } from './aimatrix-validator.js';
import { AiMatrixSharedLspModule, registerLspServices } from './lsp-services.js';

export type AiMatrixAddedServices = {
    validation: {
        AiMatrixValidator: AiMatrixValidator
    }
};

export type AiMatrixServices = LangiumServices & AiMatrixAddedServices;

/** Services common to both languages. */
export const AiMatrixModule: Module<AiMatrixServices, PartialLangiumServices & AiMatrixAddedServices> = {
    parser: {
        LangiumParser: services => createGuardedParser(services),
        ParserErrorMessageProvider: services => new AiMatrixParserErrorMessageProvider(services)
    },
    references: {
        Linker: services => new AiMatrixLinker(services),
        ScopeComputation: services => new AiMatrixScopeComputation(services),
        ScopeProvider: services => new AiMatrixScopeProvider(services)
    },
    workspace: {
        AstNodeDescriptionProvider: services => new AiMatrixAstNodeDescriptionProvider(services),
        ReferenceDescriptionProvider: services => new AiMatrixReferenceDescriptionProvider(services)
    },
    validation: {
        AiMatrixValidator: services => new AiMatrixValidator(services),
        DocumentValidator: services => new AiMatrixBlockValidator(services)
    },
    ...registerLspServices()
};

/** Shared services: a large document is re-parsed by top-level block. */
export const AiMatrixSharedModule: Module<LangiumSharedServices, { workspace: { LangiumDocumentFactory: (s: LangiumSharedServices) => AiMatrixDocumentFactory } }> = {
    workspace: {
        LangiumDocumentFactory: services => new AiMatrixDocumentFactory(services)
    }
};

export interface AiMatrixLanguages {
    shared: LangiumSharedServices;
    twin: AiMatrixServices;
    agent: AiMatrixServices;
}

/**
 * Creates the services of both languages. With a `connection` they serve LSP; without
 * one (the CLI, the runtime, tests) they parse, link and validate files on their own.
 */
export function createAiMatrixServices(context: DefaultSharedModuleContext): AiMatrixLanguages {
    const shared = inject(createDefaultSharedModule(context), AiMatrixGeneratedSharedModule, AiMatrixSharedLspModule, AiMatrixSharedModule);
    const twin = inject(createDefaultModule({ shared }), TwinLanguageGeneratedModule, AiMatrixModule);
    const agent = inject(createDefaultModule({ shared }), AgentLanguageGeneratedModule, AiMatrixModule);
    shared.ServiceRegistry.register(twin);
    shared.ServiceRegistry.register(agent);
    registerValidationChecks(twin);
    registerValidationChecks(agent);
    if (!context.connection) {
        // Without a client nothing sends a configuration: mark it ready so that builds can run.
        void shared.workspace.ConfigurationProvider.initialized({});
    }
    return { shared, twin, agent };
}
