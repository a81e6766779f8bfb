import { ApiToken } from './ApiToken.js';
import { Backup } from './Backup.js';
import { Blob } from './Blob.js';
import { Project } from './Project.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Upload } from './Upload.js';
import { User } from './User.js';

export { ApiToken, Backup, Blob, Project, Structure, StructureVersion, Upload, User };
export const entities = [User, ApiToken, Project, Blob, Structure, StructureVersion, Upload, Backup];
