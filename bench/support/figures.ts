/** The q-quantile (0–1) of some values, by the nearest rank below; NaN when there are none. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * A comment line both readers skip, put first in a copy so its content (and sha256) is its own:
 * a REMARK record for PDB, a `#` line for mmCIF.
 */
export function commentLine(format: 'pdb' | 'cif', text: string): string {
  return format === 'cif' ? `# ${text}\n` : `REMARK 999 ${text}\n`;
}

/**
 * A multi-model PDB of about `bytes`: the ATOM/HETATM records of `base` (a PDB file's text)
 * repeated as models; a `remark` line first makes copies distinct where their hashes must differ.
 */
export function multiModelPdb(base: string, bytes: number, remark?: string): Buffer {
  const atoms = base.split('\n').filter((l) => l.startsWith('ATOM') || l.startsWith('HETATM'));
  const model = `${atoms.join('\n')}\nENDMDL\n`;
  const parts = remark === undefined ? [] : [`REMARK 999 ${remark}\n`];
  for (let n = 1, length = 0; length < bytes; n++) {
    const part = `MODEL     ${String(n).padStart(4)}\n${model}`;
    parts.push(part);
    length += part.length;
  }
  return Buffer.from(`${parts.join('')}END\n`);
}
