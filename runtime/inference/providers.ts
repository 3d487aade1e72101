/**
 * Execution providers: which of the DSL's provider names this machine can run, and opening
 * an ONNX Runtime session on the first one of a preference list that it has (with one
 * warning line for a fallback, always ending at the CPU).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';

/** The provider names of the agent language (`providers [cuda, cpu]`), as ONNX Runtime spells them. */
export type ProviderName = 'tensorrt' | 'cuda' | 'dml' | 'coreml' | 'webgpu' | 'cpu';

export const PROVIDER_NAMES: readonly ProviderName[] = ['tensorrt', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

export function isProviderName(name: string): name is ProviderName {
    return (PROVIDER_NAMES as readonly string[]).includes(name);
}

/** ONNX Runtime's native log: errors only (its warnings go to stderr and would garble a terminal). */
const LOG_SEVERITY_ERROR = 3;
ort.env.logLevel = 'error';

/**
 * A one-node model (Identity on float[1]) that a probe opens to learn whether a provider
 * really works here: WebGPU is bundled but needs an adapter, which only creating a session says.
 */
const PROBE_MODEL_BASE64 = 'CAg6NwoQCgF4EgF5IghJZGVudGl0eRIBcFoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0=';

const known = new Map<ProviderName, boolean>();

/**
 * The providers this machine can run, in the DSL's names: what the binding ships (`bundled`)
 * or has installed beside it (CUDA, TensorRT: their shared libraries), WebGPU only where an
 * adapter exists. Each answer is computed once per process (the WebGPU probe runs in a
 * child process, so Dawn's complaints about missing drivers never reach this process's stderr).
 */
export function availableProviders(): ProviderName[] {
    return PROVIDER_NAMES.filter(providerAvailable);
}

/** Whether this machine can run one provider (probed only when first asked: openSession asks only down to the first that works). */
export function providerAvailable(name: ProviderName): boolean {
    let yes = known.get(name);
    if (yes === undefined) {
        yes = name === 'cpu' || detect(name);
        known.set(name, yes);
    }
    return yes;
}

function detect(name: ProviderName): boolean {
    const backend = ort.listSupportedBackends().find(b => b.name === name);
    if (!backend) return false;
    if (name === 'webgpu') return probeInChild('webgpu');
    return backend.bundled || installedBeside(name);
}

/** CUDA and TensorRT are not in the npm package; they count where their provider library was installed next to the binding. */
function installedBeside(name: ProviderName): boolean {
    const library = name === 'cuda' ? 'libonnxruntime_providers_cuda.so' : name === 'tensorrt' ? 'libonnxruntime_providers_tensorrt.so' : undefined;
    if (!library) return false;
    try {
        const dir = require.resolve('onnxruntime-node').replace(/[\\/]dist[\\/]index\.js$/, '');
        const bin = `${dir}/bin/napi-v6/${process.platform}/${process.arch}`;
        return fs.existsSync(`${bin}/${library}`) && probeInChild(name);
    } catch {
        return false;
    }
}

/** Open the probe model with one provider in a child process; true when that worked. */
function probeInChild(provider: ProviderName): boolean {
    let ortPath: string;
    try {
        ortPath = require.resolve('onnxruntime-node');
    } catch {
        return false;
    }
    const script = `
const ort = require(${JSON.stringify(ortPath)});
ort.env.logLevel = 'fatal';
const bytes = Buffer.from(${JSON.stringify(PROBE_MODEL_BASE64)}, 'base64');
ort.InferenceSession.create(bytes, { executionProviders: [${JSON.stringify(provider)}], logSeverityLevel: 4 })
  .then(() => process.exit(0), () => process.exit(1));`;
    const result = spawnSync(process.execPath, ['-e', script], { stdio: 'ignore', timeout: 20_000, windowsHide: true });
    return result.status === 0;
}

export interface OpenSessionOptions {
    /** Preference list, best first (the model's `providers`); empty means the CPU. */
    readonly providers: readonly string[];
    readonly intraOpThreads?: number;
    readonly interOpThreads?: number;
    readonly enableProfiling?: boolean;
    readonly profileFilePrefix?: string;
    /** Called with one line when a provider asked for is not used. */
    readonly onWarning?: (line: string) => void;
}

export interface OpenedSession {
    readonly session: ort.InferenceSession;
    readonly provider: ProviderName;
    readonly requested: readonly string[];
}

/**
 * Open `file` on the first provider of the preference list that this machine has. A provider
 * asked for and missing (or failing to start) falls back to the next, and on to the CPU,
 * with one warning line naming the first one asked for and the one used. An unknown provider
 * name, a missing file or a file ONNX Runtime cannot load is one line naming it.
 */
export async function openSession(file: string, opts: OpenSessionOptions): Promise<OpenedSession> {
    const requested = [...opts.providers];
    for (const name of requested) {
        if (!isProviderName(name)) {
            throw new Error(`unknown execution provider '${name}' (known: ${PROVIDER_NAMES.join(', ')})`);
        }
    }
    if (!fs.existsSync(file)) throw new Error(`${file}: model file not found`);
    let stat: fs.Stats;
    try {
        stat = fs.statSync(file);
    } catch (error) {
        throw new Error(`${file}: ${oneLine(error)}`);
    }
    if (!stat.isFile()) throw new Error(`${file}: not a file`);

    const wanted: ProviderName[] = requested.length > 0 ? requested.filter(isProviderName) : ['cpu'];
    if (!wanted.includes('cpu')) wanted.push('cpu');
    let firstMissing: string | undefined;
    for (const provider of wanted) {
        if (!providerAvailable(provider)) {
            firstMissing ??= provider;
            continue;
        }
        try {
            const session = await ort.InferenceSession.create(file, sessionOptions(provider, opts));
            if (firstMissing !== undefined) opts.onWarning?.(`provider '${firstMissing}' is not available here; using '${provider}'`);
            return { session, provider, requested };
        } catch (error) {
            // The CPU failing means the file itself is at fault; another provider failing may be the machine.
            if (provider === 'cpu') throw new Error(`${file}: cannot load the model: ${oneLine(error)}`);
            firstMissing ??= provider;
        }
    }
    /* c8 ignore next */
    throw new Error(`${file}: no execution provider could open the model`);
}

function sessionOptions(provider: ProviderName, opts: OpenSessionOptions): ort.InferenceSession.SessionOptions {
    return {
        executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
        graphOptimizationLevel: 'all',
        logSeverityLevel: LOG_SEVERITY_ERROR,
        ...(opts.intraOpThreads !== undefined ? { intraOpNumThreads: opts.intraOpThreads } : {}),
        ...(opts.interOpThreads !== undefined ? { interOpNumThreads: opts.interOpThreads } : {}),
        ...(opts.enableProfiling ? { enableProfiling: true } : {}),
        ...(opts.profileFilePrefix !== undefined ? { profileFilePrefix: opts.profileFilePrefix } : {})
    };
}

/** ONNX Runtime's messages carry its source path and sometimes several lines: keep the reason. */
function oneLine(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    const first = text.split(/\r?\n/).map(s => s.trim()).find(s => s.length > 0) ?? 'unknown error';
    // "/onnxruntime_src/…/inference_session.cc:123 onnxruntime::…] Load model from x failed:Protobuf parsing failed."
    const stripped = first
        .replace(/^\S+\.(?:cc|h|cpp):\d+\s+\S+\s*/, '')
        .replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '')
        .replace(/^Load model from .* failed:\s*/, '');
    return stripped.length > 0 ? stripped : first;
}
