import { ApiToken } from './ApiToken.js';
import { Backup } from './Backup.js';
import { Blob } from './Blob.js';
import { Derivation } from './Derivation.js';
import { DerivationOwner } from './DerivationOwner.js';
import { Draft } from './Draft.js';
import { ImportBatch } from './ImportBatch.js';
import { ImportItem } from './ImportItem.js';
import { Project } from './Project.js';
import { QuotaReservation } from './QuotaReservation.js';
import { Relationship } from './Relationship.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Upload } from './Upload.js';
import { User } from './User.js';
import { UserUsage } from './UserUsage.js';
import { VersionDiff } from './VersionDiff.js';

export {
  ApiToken,
  Backup,
  Blob,
  Derivation,
  DerivationOwner,
  Draft,
  ImportBatch,
  ImportItem,
  Project,
  QuotaReservation,
  Relationship,
  Structure,
  StructureVersion,
  Upload,
  User,
  UserUsage,
  VersionDiff,
};
export const entities = [
  User,
  ApiToken,
  Project,
  Blob,
  Structure,
  StructureVersion,
  Upload,
  Draft,
  Relationship,
  QuotaReservation,
  UserUsage,
  VersionDiff,
  Backup,
  Derivation,
  DerivationOwner,
  ImportBatch,
  ImportItem,
];
