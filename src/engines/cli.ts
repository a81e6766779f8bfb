import fs from 'node:fs/promises';
import type { Format } from '../formats/types.js';
import { EngineError, runProcess } from './process.js';
import type { ConversionRequest, EngineDriver, EngineName } from './types.js';

/** The last non-empty lines of an engine's output: usually where it says what went wrong. */
function tail(text: string, lines = 4): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' ')
    .slice(0, 600);
}

async function outputSize(file: string): Promise<number> {
  return fs.stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

const GEMMI_FORMATS: Partial<Record<Format, string>> = { pdb: 'pdb', cif: 'mmcif' };

/** gemmi: one `gemmi convert` process per job (PDB ↔ mmCIF). */
export class GemmiDriver implements EngineDriver {
  readonly name: EngineName = 'gemmi';
  constructor(
    readonly version: string,
    private readonly bin: string,
  ) {}

  async convert(request: ConversionRequest): Promise<void> {
    const from = GEMMI_FORMATS[request.from];
    const to = GEMMI_FORMATS[request.to];
    if (!from || !to) throw new EngineError(`gemmi cannot convert ${request.from} to ${request.to}.`, 'engine_unavailable');
    const what = `gemmi convert (${request.from} → ${request.to})`;
    const result = await runProcess(this.bin, ['convert', `--from=${from}`, `--to=${to}`, request.input, request.output], {
      cwd: request.scratch,
      timeoutMs: request.timeoutMs,
      what,
    });
    if (result.code !== 0) {
      throw new EngineError(
        `${what} failed${result.signal ? ` (killed by ${result.signal})` : ` (exit code ${result.code})`}: ${tail(result.stderr || result.stdout) || 'no message'}`,
      );
    }
    if ((await outputSize(request.output)) === 0) throw new EngineError(`${what} wrote no output: ${tail(result.stderr) || 'no message'}`);
  }
}

const OBABEL_FORMATS: Partial<Record<Format, string>> = { sdf: 'sdf', mol: 'mol', mol2: 'mol2', xyz: 'xyz', pdb: 'pdb' };

/** Open Babel: one `obabel` process per job (small molecules). */
export class OpenBabelDriver implements EngineDriver {
  readonly name: EngineName = 'openbabel';
  constructor(
    readonly version: string,
    private readonly bin: string,
  ) {}

  async convert(request: ConversionRequest): Promise<void> {
    const from = OBABEL_FORMATS[request.from];
    const to = OBABEL_FORMATS[request.to];
    if (!from || !to) throw new EngineError(`Open Babel cannot convert ${request.from} to ${request.to}.`, 'engine_unavailable');
    const what = `Open Babel (${request.from} → ${request.to})`;
    const result = await runProcess(this.bin, [`-i${from}`, request.input, `-o${to}`, '-O', request.output], {
      cwd: request.scratch,
      timeoutMs: request.timeoutMs,
      what,
    });
    // obabel exits 0 even when it read nothing; its "N molecules converted" line tells.
    const converted = /(\d+) molecules? converted/.exec(result.stderr);
    if (result.code !== 0 || !converted || converted[1] === '0' || (await outputSize(request.output)) === 0) {
      const reason = tail(result.stderr.replace(/={5,}/g, '')) || `exit code ${result.code}`;
      throw new EngineError(`${what} converted nothing: ${reason}`);
    }
  }
}

/** First line of a command's output, or undefined when the command is not there or fails. */
export async function probeVersion(bin: string, args: string[], pattern: RegExp, timeoutMs = 20_000): Promise<string | undefined> {
  try {
    const result = await runProcess(bin, args, { timeoutMs, what: bin });
    const match = pattern.exec(`${result.stdout}\n${result.stderr}`);
    return match?.[1];
  } catch {
    return undefined;
  }
}
