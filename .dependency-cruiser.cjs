// The layer rules of docs/ARCHITECTURE.md, enforced by `npm run lint`.
// Layers point down: api, cli → workers → jobs → services → the low layers.
const LOW = '^src/(search|storage|formats|engines|entities|db|lib|config|queue|pool|runtime|backup)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycles make load order matter. ORM entities may refer to each other (relations).',
      from: { pathNot: '^src/entities/' },
      to: { circular: true },
    },
    {
      name: 'services-point-down',
      severity: 'error',
      comment: 'Domain code is shared by the API, jobs and the CLI; it never reaches up into them.',
      from: { path: '^src/services/' },
      to: { path: '^src/(jobs|workers|api|cli)/' },
    },
    {
      name: 'jobs-point-down',
      severity: 'error',
      comment: 'Job handlers call domain functions; processes (api, cli, workers) host them.',
      from: { path: '^src/jobs/' },
      to: { path: '^src/(api|cli|workers)/' },
    },
    {
      name: 'low-layers-point-down',
      severity: 'error',
      comment: 'search, storage, formats, engines, entities, db, lib, config, queue, pool, runtime and backup know nothing of the layers above.',
      from: { path: LOW },
      to: { path: '^src/(services|jobs|workers|api|cli)/' },
    },
    {
      name: 'routes-stand-alone',
      severity: 'error',
      comment: 'A route folder never imports another; what two routes share lives in src/api/ (access, http, presenters).',
      from: { path: '^src/api/routes/([^/]+)/' },
      to: { path: '^src/api/routes/', pathNot: '^src/api/routes/$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test|bench|migrations)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
