import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { createdAtColumn, updatedAtColumn } from './common.js';
import { User } from './User.js';

/**
 * Bytes an upload in flight holds against its owner's quota, from the first byte received until
 * the upload is stored (then its blob is charged instead), refused or failed. Keyed by the upload
 * id, which exists before the uploads row does (that row is written once streaming has finished).
 */
export const QuotaReservation = defineEntity({
  name: 'QuotaReservation',
  tableName: 'quota_reservations',
  properties: {
    uploadId: p.uuid().primary(),
    owner: () => p.manyToOne(User).mapToPk().deleteRule('cascade').index(),
    bytes: p.bigint('number'),
    createdAt: createdAtColumn(),
    updatedAt: updatedAtColumn(),
  },
});
export type QuotaReservation = InferEntity<typeof QuotaReservation>;
