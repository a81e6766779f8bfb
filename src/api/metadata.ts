import type { EntityManager } from '@mikro-orm/postgresql';
import { type Metadata, metadataProblems, projectMetadataSchema } from '../services/metadata/metadata.js';
import { ApiError } from './errors.js';

/** The metadata as given, once it fits the project's schema; otherwise 422 with each problem. */
export async function checkedMetadata(em: EntityManager, projectId: string, metadata: Metadata): Promise<Metadata> {
  const problems = metadataProblems(await projectMetadataSchema(em, projectId), metadata);
  if (problems.length > 0) {
    throw new ApiError(
      422,
      'metadata_schema_violation',
      `The metadata does not fit the project's metadata schema: ${problems.map((p) => p.message).join('; ')}.`,
      {
        problems,
      },
    );
  }
  return metadata;
}
