import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SigningKey } from '../../entities/SigningKey.js';

/** A key that signs (the first) or verifies download URLs, named by its key id. */
export interface UrlSigningKey {
  kid: string;
  secret: Buffer;
}

/**
 * The keys of signed download URLs. Configured keys (`SIGNING_KEYS`, the first signs) come first;
 * without any, one is generated and kept in `signing_keys`, so every API process signs alike and a
 * restart breaks no URL. A stored key also keeps verifying after keys are configured, so moving to
 * configured keys breaks no unexpired URL either. A key id found once is remembered by the process.
 */
export class SigningKeyRing {
  private readonly known = new Map<string, UrlSigningKey>();
  private stored: UrlSigningKey | undefined;

  constructor(configured: { kid: string; secret: string }[]) {
    for (const key of configured) this.known.set(key.kid, { kid: key.kid, secret: Buffer.from(key.secret, 'utf8') });
  }

  /** The key new URLs are signed with. */
  async signingKey(em: EntityManager): Promise<UrlSigningKey> {
    const first = this.known.values().next();
    if (!first.done && !first.value.kid.startsWith(STORED_KID_PREFIX)) return first.value;
    this.stored ??= await storedSigningKey(em);
    this.known.set(this.stored.kid, this.stored);
    return this.stored;
  }

  /** The key with this id, when it is configured or stored. */
  async key(em: EntityManager, kid: string): Promise<UrlSigningKey | undefined> {
    const known = this.known.get(kid);
    if (known) return known;
    if (!kid.startsWith(STORED_KID_PREFIX)) return undefined;
    const row = await em.findOne(SigningKey, { kid });
    if (!row) return undefined;
    const key = { kid: row.kid, secret: Buffer.from(row.secret, 'base64') };
    this.known.set(kid, key);
    return key;
  }
}

/** Generated key ids start so, and configured ones may not, so a lookup never mistakes one for the other. */
const STORED_KID_PREFIX = 'db-';

/**
 * The oldest stored key, generated first when there is none. Two processes generating at once
 * both insert, and both then sign with the oldest.
 */
async function storedSigningKey(em: EntityManager): Promise<UrlSigningKey> {
  const oldest = async () => (await em.execute<{ kid: string; secret: string }[]>('select kid, secret from signing_keys order by created_at, kid limit 1'))[0];
  let row = await oldest();
  if (!row) {
    await em.execute('insert into signing_keys (kid, secret) values (?, ?) on conflict do nothing', [
      `${STORED_KID_PREFIX}${randomBytes(6).toString('hex')}`,
      randomBytes(32).toString('base64'),
    ]);
    row = await oldest();
  }
  if (!row) throw new Error('no signing key could be stored');
  return { kid: row.kid, secret: Buffer.from(row.secret, 'base64') };
}
