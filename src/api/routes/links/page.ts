import type { Structure } from '../../../entities/Structure.js';
import type { StructureVersion } from '../../../entities/StructureVersion.js';
import { FORMAT_LABELS, type Format } from '../../../formats/types.js';

/** How Mol* names the formats it reads (`loadStructureFromUrl(url, format, isBinary)`); a session has no 3D preview. */
const MOLSTAR_FORMATS: Partial<Record<Format, { format: string; binary: boolean }>> = {
  pdb: { format: 'pdb', binary: false },
  cif: { format: 'mmcif', binary: false },
  bcif: { format: 'mmcif', binary: true },
  sdf: { format: 'sdf', binary: false },
  mol: { format: 'mol', binary: false },
  mol2: { format: 'mol2', binary: false },
  xyz: { format: 'xyz', binary: false },
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON inside a <script> element: nothing in it can close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/**
 * The page's policy: everything from molvault itself, nothing from elsewhere. Mol* builds its
 * shaders and workers at run time, hence eval and blob: workers.
 */
export const SHARE_PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self' blob: data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { padding: 12px 20px; background: #fff; border-bottom: 1px solid #dde1e7; }
h1 { font-size: 1.35rem; margin: 0 0 4px; }
.description { margin: 0; color: #4a5263; }
main { display: flex; gap: 16px; padding: 16px 20px; flex-wrap: wrap; }
#viewer { position: relative; flex: 2 1 520px; height: 70vh; min-height: 360px; background: #fff; border: 1px solid #dde1e7; }
#viewer-status { position: absolute; top: 45%; width: 100%; text-align: center; color: #4a5263; }
aside { flex: 1 1 260px; }
section { background: #fff; border: 1px solid #dde1e7; padding: 12px 14px; margin-bottom: 12px; }
h2 { font-size: 1rem; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
td { padding: 2px 4px; vertical-align: top; }
td:first-child { color: #4a5263; white-space: nowrap; }
a.download { display: inline-block; padding: 8px 14px; background: #1f5fbf; color: #fff; text-decoration: none; border-radius: 4px; }
ol { padding-left: 20px; margin: 0; font-size: 0.9rem; }
li { margin-bottom: 4px; }
footer { padding: 0 20px 16px; color: #6b7385; font-size: 0.8rem; }
`;

export interface SharePage {
  linkId: string;
  structure: Structure;
  /** The version shown and loaded in the viewer. */
  version: StructureVersion;
  /** The versions the link gives access to, newest first (only the fixed one for a pinned link). */
  versions: StructureVersion[];
  /** `original` or a format name: what the download button and the viewer get. */
  format: Format;
  filename: string;
  expiresAt: Date | null;
  /** The link shares one fixed version. */
  pinned: boolean;
}

function summaryRows(version: StructureVersion): [string, string][] {
  const s = version.summary;
  const rows: [string, string | number | undefined][] = [
    ['Title', s.title],
    ['PDB id', s.pdbId],
    ['Method', s.method],
    ['Resolution', s.resolution !== undefined ? `${s.resolution} Å` : undefined],
    ['Formula', s.formula],
    ['Atoms', s.atoms],
    ['Models', s.models],
    ['Chains', s.chains],
    ['Residues', s.residues],
    ['Molecular weight', s.molecularWeight !== undefined ? `${Math.round(s.molecularWeight * 100) / 100} g/mol` : undefined],
    ['Format', FORMAT_LABELS[version.format as Format] ?? version.format],
  ];
  return rows.filter((r): r is [string, string | number] => r[1] !== undefined && r[1] !== '').map(([k, v]) => [k, String(v)]);
}

/** The page a share link shows a browser: the structure in Mol*, its summary, versions and a download button. */
export function renderSharePage(page: SharePage): string {
  const base = `/l/${page.linkId}`;
  const { pinned } = page;
  const versionQuery = (n: number) => (pinned ? '' : `version=${n}`);
  const fileUrl = `${base}/${encodeURIComponent(page.filename)}${pinned ? '' : `?${versionQuery(page.version.number)}`}`;
  const downloadUrl = (n: number) => `${base}?download=1${pinned ? '' : `&amp;${versionQuery(n)}`}`;
  const molstar = MOLSTAR_FORMATS[page.format];
  const config = { fileUrl, molstarFormat: molstar?.format ?? null, binary: molstar?.binary ?? false, atoms: page.version.summary.atoms };
  const rows = summaryRows(page.version)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`)
    .join('');
  const versions = page.versions
    .map(
      (v) =>
        `<li>Version ${v.number}${v.id === page.version.id ? ' (shown)' : ''}, ${escapeHtml(v.createdAt.toISOString().slice(0, 10))}${
          v.message ? `: ${escapeHtml(v.message)}` : ''
        } — <a href="${downloadUrl(v.number)}">download</a>${v.id === page.version.id || pinned ? '' : ` · <a href="${base}?${versionQuery(v.number)}">view</a>`}</li>`,
    )
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.structure.name)} · molvault</title>
<link rel="stylesheet" href="/viewer/molstar.css">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(page.structure.name)}</h1>
${page.structure.description ? `<p class="description">${escapeHtml(page.structure.description)}</p>` : ''}
</header>
<main>
<div id="viewer"><div id="viewer-status">Loading the 3D view…</div></div>
<aside>
<section>
<p><a class="download" id="download" href="${downloadUrl(page.version.number)}" download="${escapeHtml(page.filename)}">Download ${escapeHtml(page.filename)}</a></p>
</section>
<section>
<h2>Summary (version ${page.version.number})</h2>
<table>${rows}</table>
</section>
<section>
<h2>Versions</h2>
<ol reversed>${versions}</ol>
</section>
</aside>
</main>
<footer>Shared through molvault${page.expiresAt ? `; this link works until ${escapeHtml(page.expiresAt.toISOString().replace('T', ' ').slice(0, 16))} UTC` : ''}.</footer>
<script type="application/json" id="molvault-share">${scriptJson(config)}</script>
<script src="/viewer/molstar.js"></script>
<script src="/viewer/share.js"></script>
</body>
</html>
`;
}

/** A refusal as a page, for someone who opened a link in a browser. */
export function renderRefusalPage(status: number, message: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta name="robots" content="noindex"><title>molvault: ${status}</title>
<style>body { font-family: system-ui, sans-serif; margin: 15vh auto; max-width: 36rem; color: #1d2330; }</style></head>
<body><h1>This link cannot be opened</h1><p>${escapeHtml(message)}</p></body>
</html>
`;
}
