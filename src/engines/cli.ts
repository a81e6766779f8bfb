import fs from 'node:fs/promises';
import type { Format } from '../formats/types.js';
import { EngineError, runProcess } from './process.js';
import type { ConversionNotes, ConversionRequest, EngineDriver, EngineName } from './types.js';

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

/** Chain names a PDB file can hold in its columns 21-22 (gemmi writes two characters there when it must). */
const PDB_CHAIN_NAME = /^[A-Za-z0-9]{1,2}$/;
const ONE_CHARACTER_NAMES = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * New names for the author chain names of an mmCIF that PDB cannot hold (longer than 2
 * characters): unused single characters while they last, then unused pairs. Old → new.
 */
export async function pdbChainRenames(cifPath: string): Promise<Record<string, string>> {
  // Mol*'s CIF reader is loaded by the conversions that need it, not by every process that lists the engines.
  const { CIF } = await import('molstar/lib/mol-io/reader/cif.js');
  const parsed = await CIF.parse(await fs.readFile(cifPath, 'latin1')).run();
  if (parsed.isError) return {};
  const names: string[] = [];
  const seen = new Set<string>();
  for (const block of parsed.result.blocks) {
    const sites = block.categories.atom_site;
    const column = sites?.getField('auth_asym_id') ?? sites?.getField('label_asym_id');
    if (!sites || !column) continue;
    for (let row = 0; row < sites.rowCount; row++) {
      const name = column.str(row);
      if (!seen.has(name)) {
        seen.add(name);
        names.push(name);
      }
    }
    break;
  }
  const long = names.filter((n) => !PDB_CHAIN_NAME.test(n));
  const free = [...ONE_CHARACTER_NAMES].filter((c) => !seen.has(c));
  if (long.length > free.length) {
    for (const a of ONE_CHARACTER_NAMES) for (const b of ONE_CHARACTER_NAMES) if (!seen.has(a + b)) free.push(a + b);
  }
  return Object.fromEntries(long.map((name, i) => [name, free[i]]));
}

/** gemmi: one `gemmi convert` process per job (PDB ↔ mmCIF). */
export class GemmiDriver implements EngineDriver {
  readonly name: EngineName = 'gemmi';
  constructor(
    readonly version: string,
    private readonly bin: string,
  ) {}

  /**
   * Converts, and where gemmi refuses a file molvault accepted for a reason it has an option for,
   * converts again with that option and says so: an old-style PDB with ids in columns 73-80 ("Wrong
   * format for charge") is read from its first 72 columns; chain names too long for PDB are renamed.
   */
  async convert(request: ConversionRequest): Promise<ConversionNotes | undefined> {
    const from = GEMMI_FORMATS[request.from];
    const to = GEMMI_FORMATS[request.to];
    if (!from || !to) throw new EngineError(`gemmi cannot convert ${request.from} to ${request.to}.`, 'engine_unavailable');
    const what = `gemmi convert (${request.from} → ${request.to})`;
    const run = (options: string[]) =>
      runProcess(this.bin, ['convert', `--from=${from}`, `--to=${to}`, ...options, request.input, request.output], {
        cwd: request.scratch,
        timeoutMs: request.timeoutMs,
        what,
      });
    const notes: ConversionNotes = { notes: [] };
    let result = await run([]);
    if (result.code !== 0 && request.from === 'pdb' && /Wrong format for charge/i.test(result.stderr)) {
      notes.notes.push(
        'gemmi refused columns 79-80 of the atom records as charges ("Wrong format for charge": an old-style file with ids in columns 73-80), so the file was read from its first 72 columns; elements were inferred from atom names and formal charges dropped.',
      );
      result = await run(['--old-pdb']);
    }
    if (result.code !== 0 && request.to === 'pdb' && /long chain name/i.test(result.stderr)) {
      const renames = await pdbChainRenames(request.input);
      if (Object.keys(renames).length > 0) {
        notes.chainNames = renames;
        notes.notes.push(
          `PDB files hold chain names of at most 2 characters: ${Object.entries(renames)
            .map(([old, now]) => `${old} → ${now}`)
            .join(', ')}.`,
        );
        result = await run(Object.entries(renames).map(([old, now]) => `--rename-chain=${old}:${now}`));
      }
    }
    if (result.code !== 0) {
      throw new EngineError(
        `${what} failed${result.signal ? ` (killed by ${result.signal})` : ` (exit code ${result.code})`}: ${tail(result.stderr || result.stdout) || 'no message'}`,
      );
    }
    if ((await outputSize(request.output)) === 0) throw new EngineError(`${what} wrote no output: ${tail(result.stderr) || 'no message'}`);
    return notes.notes.length > 0 ? notes : undefined;
  }
}

/** Open Babel's `cif` is the small-molecule (core) CIF; molvault asks it only of such files (engineCan). */
const OBABEL_FORMATS: Partial<Record<Format, string>> = { sdf: 'sdf', mol: 'mol', mol2: 'mol2', xyz: 'xyz', pdb: 'pdb', cif: 'cif' };

/** Open Babel: one `obabel` process per job (small molecules). */
export class OpenBabelDriver implements EngineDriver {
  readonly name: EngineName = 'openbabel';
  constructor(
    readonly version: string,
    private readonly bin: string,
  ) {}

  async convert(request: ConversionRequest): Promise<undefined> {
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
    return undefined;
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
