/**
 * The layer rules of docs/ARCHITECTURE.md, as `npm run lint` enforces them (dependency-cruiser with
 * .dependency-cruiser.cjs). Each rule is shown to catch a deliberate violation in a scratch tree, so
 * a rule that silently stopped matching (a renamed folder, a typo in a pattern) fails here; and the
 * real tree has none.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { cruise, type IConfiguration } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const config = createRequire(import.meta.url)(path.join(root, '.dependency-cruiser.cjs')) as IConfiguration;
const scratchDirs: string[] = [];

async function violations(baseDir: string): Promise<{ from: string; to: string; rule: string }[]> {
  const cwd = process.cwd();
  process.chdir(baseDir); // dependency-cruiser resolves the tsconfig and 'src' from the working directory
  try {
    const result = await cruise(['src'], {
      ...config.options,
      ruleSet: { forbidden: config.forbidden },
      validate: true,
      baseDir,
    });
    if (typeof result.output === 'string') throw new Error('expected a cruise result, got text');
    return result.output.summary.violations.map((v) => ({ from: v.from, to: v.to, rule: v.rule.name }));
  } finally {
    process.chdir(cwd);
  }
}

/** A scratch tree holding just the given files (paths under src/) and a tsconfig. */
function scratchTree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molvault-layers-'));
  scratchDirs.push(dir);
  const tsconfig = { compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

afterAll(() => {
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('layer rules', () => {
  const cases: { rule: string; from: string; to: string }[] = [
    { rule: 'low-layers-point-down', from: 'src/search/probe.ts', to: 'src/services/upload/probe.ts' },
    { rule: 'low-layers-point-down', from: 'src/storage/probe.ts', to: 'src/api/probe.ts' },
    { rule: 'low-layers-point-down', from: 'src/queue/probe.ts', to: 'src/jobs/probe.ts' },
    { rule: 'low-layers-point-down', from: 'src/pool/probe.ts', to: 'src/workers/probe.ts' },
    { rule: 'low-layers-point-down', from: 'src/runtime/probe.ts', to: 'src/services/upload/probe.ts' },
    { rule: 'low-layers-point-down', from: 'src/backup/probe.ts', to: 'src/cli/probe.ts' },
    { rule: 'services-point-down', from: 'src/services/quota/probe.ts', to: 'src/jobs/handlers/probe.ts' },
    { rule: 'services-point-down', from: 'src/services/upload/probe.ts', to: 'src/workers/probe.ts' },
    { rule: 'jobs-point-down', from: 'src/jobs/handlers/probe.ts', to: 'src/workers/probe.ts' },
    { rule: 'jobs-point-down', from: 'src/jobs/probe.ts', to: 'src/api/probe.ts' },
    { rule: 'routes-stand-alone', from: 'src/api/routes/tags/index.ts', to: 'src/api/routes/projects/index.ts' },
  ];
  for (const { rule, from, to } of cases) {
    it(`${rule} catches ${from} → ${to}`, async () => {
      const relative = path.relative(path.dirname(from), to).replace(/\.ts$/, '.js');
      const dir = scratchTree({
        [from]: `import { probe } from '${relative.startsWith('.') ? relative : `./${relative}`}';\nexport const used = probe;\n`,
        [to]: 'export const probe = 1;\n',
      });
      expect(await violations(dir)).toEqual([{ from, to, rule }]);
    });
  }

  it('allows imports that point down and within one route folder', async () => {
    const dir = scratchTree({
      'src/api/routes/tags/index.ts':
        "import { schema } from './schema.js';\nimport { access } from '../../access.js';\nimport { rename } from '../../../services/tags/rename.js';\nexport const route = [schema, access, rename];\n",
      'src/api/routes/tags/schema.ts': 'export const schema = 1;\n',
      'src/api/access.ts': "import { find } from '../services/projects/find.js';\nexport const access = find;\n",
      'src/services/projects/find.ts': "import { lock } from '../../db/locks.js';\nexport const find = lock;\n",
      'src/services/tags/rename.ts': "import { job } from '../../queue/contracts.js';\nexport const rename = job;\n",
      'src/queue/contracts.ts': "import { lock } from '../db/locks.js';\nexport const job = lock;\n",
      'src/db/locks.ts': 'export const lock = 1;\n',
    });
    expect(await violations(dir)).toEqual([]);
  });

  it('catches an import cycle', async () => {
    const dir = scratchTree({
      'src/services/a/one.ts': "import { two } from '../b/two.js';\nexport const one = () => two;\n",
      'src/services/b/two.ts': "import { one } from '../a/one.js';\nexport const two = () => one;\n",
    });
    const found = await violations(dir);
    expect(found.map((v) => v.rule)).toContain('no-cycles');
    expect(found.every((v) => v.rule === 'no-cycles')).toBe(true);
  });

  it('finds no violation in the real tree', async () => {
    expect(await violations(root)).toEqual([]);
  });
});
