import { ApiToken } from './ApiToken.js';
import { Blob } from './Blob.js';
import { Derivation } from './Derivation.js';
import { Project } from './Project.js';
import { Structure } from './Structure.js';
import { StructureVersion } from './StructureVersion.js';
import { Upload } from './Upload.js';
import { User } from './User.js';

export { ApiToken, Blob, Derivation, Project, Structure, StructureVersion, Upload, User };
export const entities = [User, ApiToken, Project, Blob, Structure, StructureVersion, Upload, Derivation];
