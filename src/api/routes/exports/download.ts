import type Router from '@koa/router';
import type { ArchiveKind } from '../../../entities/ExportArchive.js';
import type { AppContext } from '../../../runtime/context.js';
import { ARCHIVE_MEDIA_TYPES } from '../../../services/exports/archiveWriter.js';
import { access } from '../../access.js';
import { ApiError } from '../../errors.js';
import { attachment, etagOf, redirectToStore, sendStoredFile } from '../../http/download.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';

export function downloadExportRoute(router: Router, app: AppContext) {
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/exports/:id/download',
      access: { on: 'export', need: 'read' },
      summary: 'Download a finished export archive (ETag and Range supported)',
      tag: 'Exports',
      params: idParams,
      responses: {
        200: { description: 'The archive (application/zip or application/gzip)', contentType: 'application/octet-stream' },
        206: { description: 'The requested range', contentType: 'application/octet-stream' },
        302: { description: 'With DOWNLOAD_REDIRECT=1 on an S3 store: a short-lived presigned URL of the archive (Location header)' },
        304: { description: 'Not modified (If-None-Match)' },
        404: { description: 'No such export of yours', schema: errorSchema },
        409: { description: 'The export is not finished (or failed): there is no archive to download', schema: errorSchema },
        410: { description: 'The export expired and its archive was deleted', schema: errorSchema },
        416: { description: 'Range not satisfiable', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      const row = await access(app.orm.em.fork(), user).exportArchive(params.id);
      const expired = row.state === 'expired' || (row.state === 'completed' && row.expiresAt.getTime() <= Date.now());
      if (expired) {
        throw new ApiError(
          410,
          'export_expired',
          `This export expired on ${row.expiresAt.toISOString()} and its archive has been deleted; ask for a new export (POST /v1/exports).`,
          { expiresAt: row.expiresAt.toISOString() },
        );
      }
      if (row.state === 'failed') {
        throw new ApiError(409, 'export_failed', `This export failed, so there is no archive to download: ${row.error?.message ?? 'no reason was recorded.'}`, {
          error: row.error,
        });
      }
      if (row.state !== 'completed' || !row.blob) {
        throw new ApiError(
          409,
          'export_not_ready',
          `This export is still ${row.state}; download it once GET /v1/exports/${row.id} says "completed" (or ask with Prefer: wait=N).`,
          { state: row.state },
        );
      }
      const blob = row.blob;
      koa.set('Cache-Control', 'private, max-age=0, must-revalidate');
      koa.set('Content-Disposition', attachment(row.filename));
      koa.type = ARCHIVE_MEDIA_TYPES[row.archive as ArchiveKind];
      if (await redirectToStore(koa, app.blobs, app.config, blob)) return undefined;
      sendStoredFile(koa, { etag: etagOf(blob), size: row.size, noun: 'archive', read: (range) => app.blobs.read(blob, range) });
      return undefined;
    },
  );
}
