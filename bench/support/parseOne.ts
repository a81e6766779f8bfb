/**
 * One measurement in a fresh process, so its peak memory (max RSS) is its own:
 *   molvault <file> <format>  — the validate task (read file, check, summarise) as the pool runs it
 *   split <file> <format>     — the same with PDB_SPLIT_MIN_BYTES set: a large PDB's scan shared with a helper thread
 *   warm <file> <format>      — the molvault measurement of a second read of the file in the process (peak RSS covers both)
 *   reference <file> <format> — the same through Mol*'s readers only (parseStructure on the text: PDB as before the byte-level reader)
 *   tokenizer <file> <format> — Mol*'s bare tokenizer on the same text, nothing else (CIF.parse; for PDB its line splitter, parsePDB)
 * Prints one JSON line: { ms, cpuMs, readMs, readCpuMs, atoms, models, ok, maxRssMb }. CPU time is
 * reported next to wall time because the machine may be shared: it suffers less from contention.
 */
import fs from 'node:fs/promises';
import { CIF } from 'molstar/lib/mol-io/reader/cif.js';
import { parsePDB } from 'molstar/lib/mol-io/reader/pdb/parser.js';
import { parseStructure } from '../../src/formats/parse.js';
import type { Format } from '../../src/formats/types.js';
import { parse, splitPdbFrom } from '../../src/pool/tasks.js';

const [mode, file, format] = process.argv.slice(2);
// split: the molvault measurement with the PDB scan split with a helper thread (PDB_SPLIT_MIN_BYTES, off by default).
if (mode === 'split') splitPdbFrom(1);
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

if (mode === 'tokenizer') {
  const readStarted = performance.now();
  const readCpu = cpu();
  const text = (await fs.readFile(file)).toString('latin1');
  const readMs = performance.now() - readStarted;
  const readCpuMs = cpu() - readCpu;
  const started = performance.now();
  const startCpu = cpu();
  let ok: boolean;
  let atoms = 0;
  if (format === 'pdb') {
    const result = await parsePDB(text).run();
    ok = !result.isError;
    atoms = result.isError ? 0 : result.result.lines.count;
  } else {
    const result = await CIF.parse(text).run();
    ok = !result.isError;
    atoms = result.isError ? 0 : (result.result.blocks[0]?.categories.atom_site?.rowCount ?? 0);
  }
  const ms = performance.now() - started;
  const cpuMs = cpu() - startCpu;
  process.stdout.write(`${JSON.stringify({ ms, cpuMs, readMs, readCpuMs, ok, atoms, maxRssMb: maxRssMb() })}\n`);
} else {
  // warm: the file once untimed first, as a parse thread that has read a large file before (its code compiled, its heap settled).
  if (mode === 'warm') await parse({ path: file, format: format as Format });
  const started = performance.now();
  const startCpu = cpu();
  const outcome =
    mode === 'reference'
      ? await parseStructure((await fs.readFile(file)).toString('latin1'), format as Format)
      : await parse({ path: file, format: format as Format });
  const ms = performance.now() - started;
  const cpuMs = cpu() - startCpu;
  const summary = outcome.ok ? outcome.summary : undefined;
  process.stdout.write(
    `${JSON.stringify({ ms, cpuMs, ok: outcome.ok, atoms: summary?.atoms ?? 0, models: summary?.models ?? 0, maxRssMb: maxRssMb(), message: outcome.ok ? undefined : outcome.message })}\n`,
  );
}
