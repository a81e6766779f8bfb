import { ApiToken } from './ApiToken.js';
import { AuditEvent } from './AuditEvent.js';
import { Backup } from './Backup.js';
import { Blob } from './Blob.js';
import { Derivation } from './Derivation.js';
import { DerivationOwner } from './DerivationOwner.js';
import { Draft } from './Draft.js';
import { ExportArchive } from './ExportArchive.js';
import { ImportBatch } from './ImportBatch.js';
import { ImportItem } from './ImportItem.js';
import { Project } from './Project.js';
import { ProjectMember } from './ProjectMember.js';
import { QuotaReservation } from './QuotaReservation.js';
import { Relationship } from './Relationship.js';
import { ShareLink } from './ShareLink.js';
import { SigningKey } from './SigningKey.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Team } from './Team.js';
import { TeamMember } from './TeamMember.js';
import { Upload } from './Upload.js';
import { User } from './User.js';
import { UserUsage } from './UserUsage.js';
import { VersionDiff } from './VersionDiff.js';

export {
  ApiToken,
  AuditEvent,
  Backup,
  Blob,
  Derivation,
  DerivationOwner,
  Draft,
  ExportArchive,
  ImportBatch,
  ImportItem,
  Project,
  ProjectMember,
  QuotaReservation,
  Relationship,
  ShareLink,
  SigningKey,
  Structure,
  StructureVersion,
  Team,
  TeamMember,
  Upload,
  User,
  UserUsage,
  VersionDiff,
};
export const entities = [
  User,
  ApiToken,
  AuditEvent,
  Project,
  Blob,
  Structure,
  StructureVersion,
  Team,
  TeamMember,
  Upload,
  Draft,
  Relationship,
  QuotaReservation,
  UserUsage,
  VersionDiff,
  Backup,
  Derivation,
  DerivationOwner,
  ExportArchive,
  ImportBatch,
  ImportItem,
  ShareLink,
  SigningKey,
  ProjectMember,
];
