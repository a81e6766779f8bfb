import { ApiToken } from './ApiToken.js';
import { Blob } from './Blob.js';
import { Project } from './Project.js';
import { QuotaReservation } from './QuotaReservation.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Upload } from './Upload.js';
import { User } from './User.js';
import { UserUsage } from './UserUsage.js';

export { ApiToken, Blob, Project, QuotaReservation, Structure, StructureVersion, Upload, User, UserUsage };
export const entities = [User, ApiToken, Project, Blob, Structure, StructureVersion, Upload, QuotaReservation, UserUsage];
