/**
 * The runtime server's one logger: a line per message on its terminal (stderr), with the
 * time and a level, in colour when stderr is a terminal (picocolors).
 */
import { createColors } from 'picocolors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
    private readonly colors;

    constructor(
        private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
        private readonly level: LogLevel = 'info',
        color: boolean = stream.isTTY === true && !process.env.NO_COLOR
    ) {
        this.colors = createColors(color);
    }

    debug(message: string): void { this.write('debug', message); }
    info(message: string): void { this.write('info', message); }
    warn(message: string): void { this.write('warn', message); }
    error(message: string): void { this.write('error', message); }

    private write(level: LogLevel, message: string): void {
        if (ORDER[level] < ORDER[this.level]) return;
        const c = this.colors;
        const tag = level === 'error' ? c.red('ERROR') : level === 'warn' ? c.yellow('WARN ') : level === 'info' ? c.cyan('INFO ') : c.gray('DEBUG');
        const time = c.dim(new Date().toISOString().slice(11, 23));
        this.stream.write(`${time} ${tag} ${message}\n`);
    }
}
