/**
 * One measurement in a fresh process, so its peak memory (max RSS) is its own:
 *   molvault <file> <format>  — the validate task (read file, check, summarise) as the pool runs it
 *   tokenizer <file>          — Mol*'s bare CIF tokenizer (CIF.parse) on the same text, nothing else
 * Prints one JSON line: { ms, readMs, atoms, models, ok, maxRssMb }.
 */
import fs from 'node:fs/promises';
import { CIF } from 'molstar/lib/mol-io/reader/cif.js';
import type { Format } from '../../src/formats/types.js';
import { parse } from '../../src/workers/pool/tasks.js';

const [mode, file, format] = process.argv.slice(2);
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

if (mode === 'tokenizer') {
  const readStarted = performance.now();
  const text = (await fs.readFile(file)).toString('latin1');
  const readMs = performance.now() - readStarted;
  const started = performance.now();
  const result = await CIF.parse(text).run();
  const ms = performance.now() - started;
  const sites = result.isError ? undefined : result.result.blocks[0]?.categories.atom_site;
  process.stdout.write(`${JSON.stringify({ ms, readMs, ok: !result.isError, atoms: sites?.rowCount ?? 0, maxRssMb: maxRssMb() })}\n`);
} else {
  const started = performance.now();
  const outcome = await parse({ path: file, format: format as Format });
  const ms = performance.now() - started;
  const summary = outcome.ok ? outcome.summary : undefined;
  process.stdout.write(
    `${JSON.stringify({ ms, ok: outcome.ok, atoms: summary?.atoms ?? 0, models: summary?.models ?? 0, maxRssMb: maxRssMb(), message: outcome.ok ? undefined : outcome.message })}\n`,
  );
}
