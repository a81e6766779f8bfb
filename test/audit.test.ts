import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectOrm } from '../src/db/orm.js';
import { expireAuditEvents, recordAudit } from '../src/services/audit/audit.js';
import { ownDatabase } from './helpers/database.js';

describe('audit log storage', () => {
  let database: Awaited<ReturnType<typeof ownDatabase>>;
  let orm: MikroORM;

  beforeAll(async () => {
    database = await ownDatabase('audit');
    orm = await connectOrm(database.url);
  });
  afterAll(async () => {
    await orm?.close();
    await database?.drop();
  });

  it('appends an event with its actor, target and origin', async () => {
    const em = orm.em.fork();
    const userId = '00000000-0000-4000-8000-000000000001';
    await recordAudit(em, {
      action: 'token.create',
      actor: { userId, tokenId: null },
      origin: { ip: '10.0.0.1', userAgent: 'curl/8' },
      targetType: 'token',
      targetId: 'abc',
      details: { scopes: ['read'] },
    });
    const rows =
      await em.execute<{ action: string; actor_user_id: string; ip: string; user_agent: string; details: { scopes: string[] } }[]>(
        'select * from audit_events',
      );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'token.create', actor_user_id: userId, ip: '10.0.0.1', user_agent: 'curl/8', details: { scopes: ['read'] } });
  });

  it('refuses updates and deletes: entries are append-only', async () => {
    const em = orm.em.fork();
    await expect(em.execute(`update audit_events set action = 'x'`)).rejects.toThrow(/append-only/);
    await expect(em.execute('delete from audit_events')).rejects.toThrow(/append-only/);
    const [row] = await em.execute<{ n: string }[]>('select count(*) as n from audit_events');
    expect(Number(row.n)).toBe(1);
  });

  it('lets only the retention step delete, and only what is older than the retention', async () => {
    const em = orm.em.fork();
    const now = new Date();
    expect(await expireAuditEvents(em, 365, now)).toBe(0);
    const later = new Date(now.getTime() + 400 * 86_400_000);
    expect(await expireAuditEvents(em, 365, later)).toBe(1);
    const [row] = await em.execute<{ n: string }[]>('select count(*) as n from audit_events');
    expect(Number(row.n)).toBe(0);
    // The retention setting was local to its transaction: a plain delete is refused again.
    await recordAudit(em, { action: 'link.use', actor: { linkId: 'l1' }, targetType: 'link', targetId: 'l1' });
    await expect(em.execute('delete from audit_events')).rejects.toThrow(/append-only/);
  });
});
