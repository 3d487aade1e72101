/**
 * Every diagnostic code of the two languages, defined once. The validator raises them,
 * the quick fixes key on them, the CLI prints them and the tests assert them.
 * Codes are stable: never rename one, add a new one instead.
 */
export const IssueCodes = {
    // syntax
    SyntaxError: 'syntax-error',
    LexingError: 'lexing-error',
    // names and references
    UnresolvedReference: 'unresolved-reference',
    DuplicateName: 'duplicate-name',
    ImportNotFound: 'import-not-found',
    ImportNotNeeded: 'unused-import',
    UnknownFunction: 'unknown-function',
    UnknownArgument: 'unknown-argument',
    MissingArgument: 'missing-argument',
    /** An argument of the wrong kind: a resource where a process is expected, a number where a list is. */
    InvalidArgument: 'invalid-argument',
    // units
    UnitMismatch: 'unit-mismatch',
    ExpectedTime: 'expected-time',
    ExpectedCount: 'expected-count',
    ExpectedCondition: 'expected-condition',
    // distributions and values
    InvalidDistributionParameter: 'invalid-distribution-parameter',
    ProbabilityOutOfRange: 'probability-out-of-range',
    InvalidCapacity: 'invalid-capacity',
    BranchProbabilitySum: 'branch-probability-sum',
    MixedBranchArms: 'mixed-branch-arms',
    InvalidExperimentSetting: 'invalid-experiment-setting',
    DuplicateSetting: 'duplicate-setting',
    // discrete-event structure
    UnreleasedResource: 'unreleased-resource',
    ReleaseWithoutSeize: 'release-without-seize',
    UnreachableProcess: 'unreachable-process',
    EntityMismatch: 'entity-mismatch',
    NotAssignable: 'not-assignable',
    // system dynamics
    FlowEndNotStock: 'flow-end-not-stock',
    FlowWithoutEnds: 'flow-without-ends',
    // experiments
    UnknownParameter: 'unknown-parameter',
    // agents
    UnknownChannel: 'unknown-channel',
    UnknownMessageField: 'unknown-message-field',
    MissingMessageField: 'missing-message-field',
    DecisionWithoutOptions: 'decision-without-options',
    MissingScore: 'missing-score',
    // models
    ModelFileMissing: 'model-file-missing',
    ModelFileNotOnnx: 'model-file-not-onnx',
    ModelWithoutFile: 'model-without-file',
    ModelTensorUnknown: 'model-tensor-unknown',
    ModelTensorTypeMismatch: 'model-tensor-type-mismatch',
    ModelTensorShapeMismatch: 'model-tensor-shape-mismatch',
    ModelInputMissing: 'model-input-missing',
    // files
    UnreadableFile: 'unreadable-file'
} as const;

export type IssueCode = typeof IssueCodes[keyof typeof IssueCodes];

/** Data attached to a diagnostic so that a quick fix can act on it without re-deriving it. */
export interface IssueData {
    code: IssueCode;
    /** A suggested replacement text (a near name, the right unit, a corrected value). */
    suggestion?: string;
    /** For unresolved references: a relative path that would bring the name into scope. */
    importPath?: string;
}
