/**
 * The extension's settings, defined once. `package.json`'s `contributes.configuration`
 * must agree with this list (test/manifest.test.ts checks it), and the extension reads
 * settings only through typed getters built on it (src/config.ts).
 */
export interface SettingSpec<T> {
    readonly key: string;
    readonly type: 'string' | 'boolean' | 'number' | 'array';
    readonly default: T;
    readonly enum?: readonly string[];
    readonly description: string;
    /** Changing it takes effect only after the language server restarts. */
    readonly restartsLanguageServer: boolean;
}

export const SETTINGS = {
    languageServerTrace: {
        key: 'aimatrix.languageServer.trace',
        type: 'string',
        default: 'off',
        enum: ['off', 'messages', 'verbose'],
        description: 'Trace the communication between VS Code and the AIMatrix language server.',
        restartsLanguageServer: false
    } satisfies SettingSpec<'off' | 'messages' | 'verbose'>,
    languageServerNodeArgs: {
        key: 'aimatrix.languageServer.nodeArgs',
        type: 'array',
        default: [] as string[],
        description: 'Extra Node.js arguments for the language server process (e.g. --max-old-space-size=4096).',
        restartsLanguageServer: true
    } satisfies SettingSpec<string[]>
} as const;

export type SettingName = keyof typeof SETTINGS;
