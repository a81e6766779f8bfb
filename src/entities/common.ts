import { randomUUID } from 'node:crypto';
import { p } from '@mikro-orm/core';

/** Columns every row has: a UUID primary key and creation/update times (timestamptz). */
export const idColumn = () =>
  p
    .uuid()
    .primary()
    .onCreate(() => randomUUID());
export const createdAtColumn = () =>
  p
    .datetime()
    .columnType('timestamptz')
    .onCreate(() => new Date());
export const updatedAtColumn = () =>
  p
    .datetime()
    .columnType('timestamptz')
    .onCreate(() => new Date())
    .onUpdate(() => new Date());
export const jsonObjectColumn = () => p.json<Record<string, unknown>>().columnType('jsonb').defaultRaw(`'{}'::jsonb`);
export const textArrayColumn = () => p.array().columnType('text[]').default([]);
