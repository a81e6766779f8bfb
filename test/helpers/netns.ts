import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One network namespace joined to the host by a veth pair, with a /30 of its own. */
export interface Namespace {
  name: string;
  /** The host end's address: where a process inside reaches services the host runs. */
  hostAddress: string;
  /** The address inside: where the host reaches a process listening in the namespace. */
  address: string;
}

export interface Namespaces {
  byRole: Record<string, Namespace>;
  /** The /24 every veth address lies in (for pg_hba.conf). */
  subnet: string;
  /** Deletes the namespaces and the veth pairs; safe to call twice, and after a partial setup. */
  remove(): Promise<void>;
}

/**
 * Why this machine cannot give the tests network namespaces, as the title of the skipped tests
 * says it; undefined when it can (then a failure later in the setup fails the tests loudly).
 * Tries what the tests need: `ip netns add`, which wants root or CAP_NET_ADMIN.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  const probe = `mvprobe-${randomBytes(4).toString('hex')}`;
  try {
    await run('ip', ['netns', 'add', probe]);
  } catch (error) {
    const { code, stderr } = error as { code?: string; stderr?: string };
    if (code === 'ENOENT') return "skipped: iproute2's `ip` is not installed, so no network namespaces";
    if (/not permitted|permission denied/i.test(stderr ?? '')) {
      return `skipped: \`ip netns add\` is not permitted here (needs root or CAP_NET_ADMIN): ${(stderr ?? '').trim()}`;
    }
    return undefined;
  }
  await run('ip', ['netns', 'del', probe]);
  return undefined;
}

/** A /24 in 10.64.0.0–10.191.255.0 that no interface or route of the host uses. */
async function freeSubnet(): Promise<string> {
  const [{ stdout: addresses }, { stdout: routes }] = await Promise.all([run('ip', ['-4', '-o', 'addr']), run('ip', ['-4', 'route'])]);
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = `10.${64 + (randomBytes(1)[0] % 128)}.${randomBytes(1)[0]}.`;
    if (!addresses.includes(` ${prefix}`) && !routes.includes(prefix)) return prefix;
  }
  throw new Error('found no free 10.x.y.0/24 for the test network namespaces');
}

/**
 * A namespace per role (`mvt-<run>-<role>`), each joined to the host by a veth pair: host end
 * 10.a.b.(4i+1), inside 10.a.b.(4i+2), /30 each, loopback up, no default route. So a process in
 * one namespace reaches the host's addresses on its own veth and nothing else: not another
 * namespace (no route there), not the host's or another namespace's loopback.
 */
export async function createNamespaces(roles: readonly string[]): Promise<Namespaces> {
  const tag = randomBytes(3).toString('hex');
  const prefix = await freeSubnet();
  const made: { netns?: string; link?: string }[] = [];
  const remove = async () => {
    while (made.length > 0) {
      const item = made.pop() as { netns?: string; link?: string };
      // Deleting the namespace destroys its end of a veth and so the pair; the host end is deleted too in case the move never happened.
      if (item.netns) await run('ip', ['netns', 'del', item.netns]).catch(() => {});
      if (item.link) await run('ip', ['link', 'del', item.link]).catch(() => {});
    }
  };
  const byRole: Record<string, Namespace> = {};
  try {
    for (const [i, role] of roles.entries()) {
      const name = `mvt-${tag}-${role}`;
      // Interface names are at most 15 characters.
      const hostIf = `mv${tag}${i}h`;
      const nsIf = `mv${tag}${i}n`;
      const hostAddress = `${prefix}${4 * i + 1}`;
      const address = `${prefix}${4 * i + 2}`;
      await run('ip', ['netns', 'add', name]);
      made.push({ netns: name });
      await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
      made.push({ link: hostIf });
      await run('ip', ['link', 'set', nsIf, 'netns', name]);
      await run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostIf]);
      await run('ip', ['link', 'set', hostIf, 'up']);
      await run('ip', ['-n', name, 'addr', 'add', `${address}/30`, 'dev', nsIf]);
      await run('ip', ['-n', name, 'link', 'set', nsIf, 'up']);
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      byRole[role] = { name, hostAddress, address };
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { byRole, subnet: `${prefix}0/24`, remove };
}

/**
 * Starts `command` inside the namespace, with each of `hide` covered by an empty tmpfs in its own
 * mount namespace (`ip netns exec` gives every command one, whose mounts do not reach the host), so
 * the process cannot read another role's files. `ip` and `sh` exec into the command: the child's
 * pid is the command's.
 */
export function spawnInNamespace(ns: Namespace, hide: readonly string[], command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const script = 'while [ "$1" != -- ]; do mount -t tmpfs -o size=1m,mode=0700 molvault-hidden "$1" || exit 97; shift; done; shift; exec "$@"';
  return spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', script, 'sh', ...hide, '--', command, ...args], options);
}

/**
 * GETs `url` from inside the namespace (Node's fetch, as molvault's own processes would) and answers
 * the HTTP status, or the system error code the connection failed with (ECONNREFUSED, ENETUNREACH…).
 */
export async function fetchFromNamespace(ns: Namespace, url: string): Promise<string> {
  const script =
    'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => console.log(r.status), (e) => console.log(e.cause?.code ?? e.name))';
  const { stdout } = await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script, url], { timeout: 30_000 });
  return stdout.trim();
}

/** The name `ip netns identify` gives the network namespace a process is in ('' for the host's). */
export async function namespaceOf(pid: number): Promise<string> {
  return (await run('ip', ['netns', 'identify', String(pid)])).stdout.trim();
}
