/**
 * One Postgres connection whose backend's on-CPU time can be read (`/proc/<pid>/schedstat`), set up
 * as the search's own pool sets its connections up, for the search study tools
 * (searchStatements.ts, searchLayout.ts, searchPostings.ts).
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';

export interface MeasuredBackend {
  client: pg.Client;
  pid: number;
  /** The backend's on-CPU time so far, in nanoseconds. */
  schedNs(): Promise<number>;
}

export async function connectMeasuredBackend(url: string, applicationName: string): Promise<MeasuredBackend> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  await client.query('set plan_cache_mode = force_generic_plan; set jit = off; set effective_io_concurrency = 0; set max_parallel_workers_per_gather = 0');
  const [{ pid }] = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows;
  return { client, pid, schedNs: async () => Number((await fs.readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]) };
}

/** Each owner's projects by name, owners in id order (the shares the bench's sharing gives). */
export async function projectsByOwner(client: pg.Client): Promise<{ owners: string[]; projectsOf: Map<string, string[]> }> {
  const owners = (await client.query<{ id: string }>('select distinct owner_id as id from projects order by 1')).rows.map((r) => r.id);
  const projectsOf = new Map<string, string[]>();
  for (const owner of owners) {
    projectsOf.set(
      owner,
      (await client.query<{ id: string }>('select id from projects where owner_id = $1 order by name', [owner])).rows.map((r) => r.id),
    );
  }
  return { owners, projectsOf };
}

/** The machine's load averages (1, 5 and 15 minutes), as the study tools print them beside their figures. */
export async function loadAverage(): Promise<string> {
  return (await fs.readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
}

/**
 * The options the word studies (searchLayout.ts, searchPostings.ts) share — `--rounds`, `--words`
 * (comma-separated) and `--keep` (keep the scratch schema) — and their measured connection to
 * DATABASE_URL's seeded database.
 */
export async function wordStudy(applicationName: string, defaults: { rounds: number; words: string }) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: String(defaults.rounds) },
      words: { type: 'string', default: defaults.words },
      keep: { type: 'boolean', default: false },
    },
  });
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL names the seeded database');
  const backend = await connectMeasuredBackend(url, applicationName);
  return { ...backend, rounds: Number(values.rounds), words: values.words.split(','), keep: values.keep };
}
