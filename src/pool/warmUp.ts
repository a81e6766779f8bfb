/**
 * A parse thread's warm-up: the readers' code is compiled and optimised by V8 only as it runs, so
 * a fresh thread reads its first files several times slower than later ones. A warm worker pool
 * reads a small made-up PDB and mmCIF structure a number of times as each thread starts, before any
 * task reaches it, so the first files sent to a worker process are read at full speed.
 */
import { parseStructureBytes } from '../formats/parse.js';

const RESIDUES = ['ALA', 'GLY', 'SER', 'LEU', 'LYS', 'GLU', 'ASP', 'VAL', 'THR', 'ILE', 'PRO', 'ASN', 'GLN', 'ARG', 'PHE', 'TYR'];
const BACKBONE: [string, string][] = [
  ['N', 'N'],
  ['CA', 'C'],
  ['C', 'C'],
  ['O', 'O'],
  ['CB', 'C'],
];

interface Atom {
  record: 'ATOM' | 'HETATM';
  name: string;
  element: string;
  residue: string;
  chain: string;
  seq: number;
  x: number;
  y: number;
  z: number;
}

function madeUpAtoms(residuesPerChain: number): Atom[] {
  const atoms: Atom[] = [];
  for (const chain of ['A', 'B']) {
    for (let seq = 1; seq <= residuesPerChain; seq++) {
      const residue = RESIDUES[(seq * 7 + chain.charCodeAt(0)) % RESIDUES.length];
      for (const [name, element] of residue === 'GLY' ? BACKBONE.slice(0, 4) : BACKBONE) {
        const i = atoms.length;
        atoms.push({
          record: 'ATOM',
          name,
          element,
          residue,
          chain,
          seq,
          x: ((i * 37) % 2000) / 10 - 100,
          y: ((i * 53) % 2000) / 10 - 100,
          z: ((i * 71) % 2000) / 10 - 100,
        });
      }
    }
  }
  for (let w = 0; w < residuesPerChain / 4; w++) {
    const i = atoms.length;
    atoms.push({
      record: 'HETATM',
      name: 'O',
      element: 'O',
      residue: 'HOH',
      chain: 'A',
      seq: 1000 + w,
      x: (i % 90) - 45.5,
      y: ((i * 3) % 90) - 45.25,
      z: ((i * 7) % 90) - 45.125,
    });
  }
  return atoms;
}

const f83 = (v: number) => v.toFixed(3).padStart(8);

function madeUpPdb(atoms: Atom[], residuesPerChain: number): Buffer {
  const lines = [
    'HEADER    WARM-UP                                 01-JAN-00   0WRM              ',
    'TITLE     A MADE-UP STRUCTURE READ AS A PARSE THREAD STARTS                    ',
    'EXPDTA    X-RAY DIFFRACTION                                                     ',
    'REMARK   2 RESOLUTION.    1.50 ANGSTROMS.                                       ',
  ];
  for (const chain of ['A', 'B']) {
    const names = atoms.filter((a) => a.chain === chain && a.record === 'ATOM' && a.name === 'N').map((a) => a.residue);
    for (let row = 0; row * 13 < names.length; row++) {
      lines.push(
        `SEQRES ${String(row + 1).padStart(3)} ${chain} ${String(residuesPerChain).padStart(4)}  ${names.slice(row * 13, row * 13 + 13).join(' ')}`.padEnd(80),
      );
    }
  }
  let serial = 0;
  let chain = atoms[0].chain;
  for (const a of atoms) {
    if (a.chain !== chain && a.record === 'ATOM') {
      lines.push(`TER   ${String(++serial).padStart(5)}`.padEnd(80));
      chain = a.chain;
    }
    const name = a.name.length < 4 ? ` ${a.name}`.padEnd(4) : a.name;
    lines.push(
      `${a.record.padEnd(6)}${String(++serial).padStart(5)} ${name} ${a.residue} ${a.chain}${String(a.seq).padStart(4)}    ${f83(a.x)}${f83(a.y)}${f83(a.z)}  1.00 20.00          ${a.element.padStart(2)}  `,
    );
  }
  lines.push('END'.padEnd(80));
  return Buffer.from(`${lines.join('\n')}\n`, 'latin1');
}

function madeUpCif(atoms: Atom[]): Buffer {
  const lines = [
    'data_0WRM',
    '_entry.id 0WRM',
    "_exptl.method 'X-RAY DIFFRACTION'",
    '_refine.ls_d_res_high 1.50',
    'loop_',
    '_entity.id',
    '_entity.type',
    '1 polymer',
    '2 water',
    'loop_',
    ...[
      'group_PDB',
      'id',
      'type_symbol',
      'label_atom_id',
      'label_alt_id',
      'label_comp_id',
      'label_asym_id',
      'label_entity_id',
      'label_seq_id',
      'pdbx_PDB_ins_code',
      'Cartn_x',
      'Cartn_y',
      'Cartn_z',
      'occupancy',
      'B_iso_or_equiv',
      'pdbx_formal_charge',
      'auth_seq_id',
      'auth_comp_id',
      'auth_asym_id',
      'auth_atom_id',
      'pdbx_PDB_model_num',
    ].map((column) => `_atom_site.${column}`),
  ];
  atoms.forEach((a, i) => {
    const water = a.residue === 'HOH';
    lines.push(
      `${a.record} ${i + 1} ${a.element} ${a.name} . ${a.residue} ${water ? 'C' : a.chain} ${water ? 2 : 1} ${water ? '.' : a.seq} ? ${a.x.toFixed(3)} ${a.y.toFixed(3)} ${a.z.toFixed(3)} 1.00 20.00 ? ${a.seq} ${a.residue} ${a.chain} ${a.name} 1`,
    );
  });
  lines.push('#');
  return Buffer.from(`${lines.join('\n')}\n`, 'latin1');
}

/** The made-up structures the warm-up reads. */
export function warmUpInputs(): { bytes: Buffer; format: 'pdb' | 'cif' }[] {
  const atoms = madeUpAtoms(300);
  return [
    { bytes: madeUpPdb(atoms, 300), format: 'pdb' as const },
    { bytes: madeUpCif(atoms), format: 'cif' as const },
  ];
}

/** Reads the made-up structures `rounds` times each; returns whether every read succeeded. */
export async function warmUpReaders(rounds = 12): Promise<boolean> {
  const inputs = warmUpInputs();
  let ok = true;
  for (let round = 0; round < rounds; round++) {
    for (const input of inputs) {
      const outcome = await parseStructureBytes(input.bytes, input.format).catch(() => undefined);
      ok &&= outcome?.ok === true;
    }
  }
  return ok;
}
