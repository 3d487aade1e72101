import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['node_modules/**', 'dist/**', 'out/**', 'language-server/generated/**', 'bench/.work/**', 'test/.work/**', '**/*.mjs', '**/*.cjs'] },
    ...tseslint.configs.recommended,
    {
        files: ['**/*.ts'],
        languageOptions: {
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
        },
        rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
            '@typescript-eslint/no-explicit-any': 'error'
        }
    },
    {
        // Boundaries: the language server and the runtime never import the editor.
        files: ['language-server/**/*.ts', 'runtime/**/*.ts', 'protocol/**/*.ts'],
        rules: {
            'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'language-server/ and runtime/ never import vscode.' }] }]
        }
    }
);
