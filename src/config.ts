/**
 * Typed access to the `aimatrix.*` settings, one getter per setting of protocol/settings.ts.
 */
import * as vscode from 'vscode';
import { SETTINGS, type SettingName } from '../protocol/index.js';

export class Config {
    private get section(): vscode.WorkspaceConfiguration {
        return vscode.workspace.getConfiguration();
    }

    get languageServerTrace(): 'off' | 'messages' | 'verbose' {
        return this.get('languageServerTrace');
    }

    get languageServerNodeArgs(): string[] {
        return this.get('languageServerNodeArgs');
    }

    /** The settings changed by an event that need a language server restart to take effect. */
    restartNeeded(event: vscode.ConfigurationChangeEvent): SettingName[] {
        return (Object.keys(SETTINGS) as SettingName[])
            .filter(name => SETTINGS[name].restartsLanguageServer && event.affectsConfiguration(SETTINGS[name].key));
    }

    private get<N extends SettingName>(name: N): (typeof SETTINGS)[N]['default'] {
        const spec = SETTINGS[name];
        return this.section.get(spec.key, spec.default) as (typeof SETTINGS)[N]['default'];
    }
}
