import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { IConfiguration } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

/**
 * docs/ARCHITECTURE.md uses only names that exist, so a search for any of them finds the code.
 * Every path it writes in backticks must exist (relative to src/, to the repository root when it
 * starts there, or to the folder whose `### \`folder/\`` section it is in), every code name it
 * writes in backticks must occur in the code, and its table of layer rules must be the rules of
 * .dependency-cruiser.cjs, folder for folder.
 */
const root = path.resolve(import.meta.dirname, '..');
const markdown = fs.readFileSync(path.join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
const ROOT_PREFIXES = ['ops/', 'src/', 'test/', 'bench/', 'migrations/', 'docs/', 'bin/', '.ci/'];
const CODE_DIRS = ['src', 'test', 'bench'];
/** Files the page names that are not in the repository: the manifest inside an export archive. */
const NOT_REPOSITORY_FILES = new Set(['manifest.json']);

/** Each backticked span with the `src/` folder of the section it is in (`### \`services/\`` → src/services), if any. */
function spans(): { text: string; section?: string }[] {
  const found: { text: string; section?: string }[] = [];
  let section: string | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^#{2,3} /.exec(line);
    if (heading) section = /^### `([\w/]+)\/`$/.exec(line)?.[1];
    for (const match of line.matchAll(/`([^`]+)`/g)) found.push({ text: match[1], section });
  }
  return found;
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((entry) => (entry.isFile() ? [path.join(entry.parentPath, entry.name)] : []));
}

const codeFiles = CODE_DIRS.flatMap((dir) => filesUnder(path.join(root, dir))).filter((file) => /\.(ts|mjs|cjs|js|json)$/.test(file));
const basenames = new Set(codeFiles.map((file) => path.basename(file)));
const code = [...codeFiles, path.join(root, 'package.json'), path.join(root, '.dependency-cruiser.cjs')]
  .map((file) => fs.readFileSync(file, 'utf8'))
  .join('\n');

/** A path: letters, digits, dots, dashes and slashes, with a slash or a file extension; not a URL path or DATA_DIR/…. */
function isPath(text: string): boolean {
  return /^[\w.-]+(\/[\w.-]*)*$/.test(text) && (text.includes('/') || /\.(ts|mjs|cjs|js|json|md)$/.test(text)) && !/^[A-Z_]+\//.test(text);
}

function pathExists(text: string, section?: string): boolean {
  const candidates = ROOT_PREFIXES.some((prefix) => text.startsWith(prefix)) ? [text] : [`src/${text}`, ...(section ? [`src/${section}/${text}`] : [])];
  if (!text.includes('/'))
    return basenames.has(text) || NOT_REPOSITORY_FILES.has(text) || ['', 'docs'].some((dir) => fs.existsSync(path.join(root, dir, text)));
  return candidates.some((candidate) => fs.existsSync(path.join(root, candidate)));
}

/** Names that can only be code: camelCase, PascalCase, UPPER_SNAKE; and whatever is called, as in `name(…)`. */
function codeNames(text: string): string[] {
  const called = [...text.matchAll(/([A-Za-z_$][\w$]*)\(/g)].map((m) => m[1]);
  const segments = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(text) ? text.split('.') : [];
  const codeLike = segments.filter((s) => /[a-z][A-Z]/.test(s) || /^[A-Z][a-z]+[A-Z]/.test(s) || /^[A-Z][A-Z0-9]*_[A-Z0-9_]+$/.test(s));
  return [...called, ...codeLike];
}

describe('docs/ARCHITECTURE.md', () => {
  it('names only paths that exist', () => {
    const missing = spans()
      .filter(({ text }) => isPath(text))
      .filter(({ text, section }) => !pathExists(text, section))
      .map(({ text }) => text);
    expect(missing).toEqual([]);
  });

  it('names only code names that occur in the code', () => {
    const missing = spans()
      .flatMap(({ text }) => codeNames(text))
      .filter((name) => !new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(code));
    expect([...new Set(missing)]).toEqual([]);
  });

  it('states the layer rules of .dependency-cruiser.cjs', () => {
    const config = createRequire(import.meta.url)(path.join(root, '.dependency-cruiser.cjs')) as IConfiguration;
    const rules = config.forbidden ?? [];
    const rows = new Map<string, string>();
    for (const line of markdown.split('\n')) {
      const row = /^\| `([a-z]+(?:-[a-z]+)+)` \| (.*) \|$/.exec(line);
      if (row) rows.set(row[1], row[2]);
    }
    expect([...rows.keys()].sort()).toEqual(rules.map((rule) => rule.name).sort());

    // A rule from ^src/(a|b)/ to ^src/(c|d)/ must name the same folders, before and after "never".
    const folders = (pattern: unknown) => {
      const match = typeof pattern === 'string' ? /^\^src\/\(?([\w|]+)\)?\/$/.exec(pattern) : null;
      return match ? match[1].split('|').sort() : undefined;
    };
    const named = (text: string) => [...text.matchAll(/`([\w]+)\/`/g)].map((m) => m[1]).sort();
    for (const rule of rules as { name?: string; from: { path?: unknown }; to: { path?: unknown } }[]) {
      const from = folders(rule.from.path);
      const to = folders(rule.to.path);
      if (!from || !to) continue;
      const [before, after] = (rows.get(rule.name as string) ?? '').split(/never import/);
      expect({ rule: rule.name, from: named(before ?? ''), to: named(after ?? '') }).toEqual({ rule: rule.name, from, to });
    }
  });

  it('holds no notes left for later', () => {
    expect(markdown).not.toMatch(/<!--/);
  });
});
