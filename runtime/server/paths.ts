/**
 * Files a client names are resolved inside the server's workspace only: no absolute path
 * elsewhere, no `..` out of it, no symbolic link that leads out of it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class OutsideWorkspaceError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'OutsideWorkspaceError';
    }
}

export class MissingFileError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'MissingFileError';
    }
}

function inside(root: string, target: string): boolean {
    const rel = path.relative(root, target);
    // `..`, `../x` are outside; `..shop.twin` is a file inside.
    return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * The real path of `file` (relative to the workspace, or absolute) when it lies inside
 * `workspaceReal` (itself a real path); throws OutsideWorkspaceError or MissingFileError.
 */
export function resolveInWorkspace(workspaceReal: string, file: string): string {
    if (file.length === 0 || file.includes('\0')) throw new OutsideWorkspaceError(`'${printable(file)}' is not a file name`);
    const lexical = path.resolve(workspaceReal, file);
    // The real path decides: an absolute path through a link to the workspace (macOS /var →
    // /private/var, a linked home folder) is inside it. A missing file is reported as missing
    // only when it would be inside, so nothing outside can be probed.
    let real: string;
    try {
        real = fs.realpathSync(lexical);
    } catch {
        if (!inside(workspaceReal, lexical)) throw new OutsideWorkspaceError(`'${printable(file)}' is outside the workspace`);
        throw new MissingFileError(`'${printable(file)}': no such file in the workspace`);
    }
    if (!inside(workspaceReal, real)) {
        throw new OutsideWorkspaceError(inside(workspaceReal, lexical) ? `'${printable(file)}' leads outside the workspace (symbolic link)` : `'${printable(file)}' is outside the workspace`);
    }
    return real;
}

function printable(s: string): string {
    return JSON.stringify(s.slice(0, 200)).slice(1, -1);
}
