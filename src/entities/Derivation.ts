import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import type { LossReport } from '../engines/loss.js';
import { Blob } from './Blob.js';
import { createdAtColumn, idColumn } from './common.js';

/**
 * A file molvault made from a stored one: source blob + target format + options → output blob, with
 * the engine and version that made it and what the conversion lost. Unique on (source, format,
 * options), so the same conversion is never run twice. Both blob references cascade: when garbage
 * collection removes either blob, the derivation goes with it.
 */
export const Derivation = defineEntity({
  name: 'Derivation',
  tableName: 'derivations',
  uniques: [{ properties: ['sourceBlob', 'format', 'optionsKey'] }],
  properties: {
    id: idColumn(),
    sourceBlob: () => p.manyToOne(Blob).mapToPk().deleteRule('cascade'),
    format: p.string(),
    /** Conversion options as given; `optionsKey` is their canonical text (sorted keys), part of the identity. */
    options: p.json<Record<string, unknown>>().columnType('jsonb'),
    optionsKey: p.string(),
    engine: p.string(),
    engineVersion: p.string(),
    blob: () => p.manyToOne(Blob).mapToPk().index().deleteRule('cascade'),
    loss: p.json<LossReport>().columnType('jsonb'),
    createdAt: createdAtColumn(),
  },
});
export type Derivation = InferEntity<typeof Derivation>;
