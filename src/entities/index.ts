import { ApiToken } from './ApiToken.js';
import { Blob } from './Blob.js';
import { Project } from './Project.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Upload } from './Upload.js';
import { User } from './User.js';
import { VersionDiff } from './VersionDiff.js';

export { ApiToken, Blob, Project, Structure, StructureVersion, Upload, User, VersionDiff };
export const entities = [User, ApiToken, Project, Blob, Structure, StructureVersion, Upload, VersionDiff];
