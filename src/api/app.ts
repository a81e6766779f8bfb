import Router from '@koa/router';
import Koa from 'koa';
import type { AppContext } from '../runtime/context.js';
import { StorageMonitor } from '../services/maintenance/storageMonitor.js';
import { bullBoard } from './admin/bullBoard.js';
import { createMetrics } from './metrics.js';
import { requireUser } from './middleware/auth.js';
import { corsPolicy } from './middleware/cors.js';
import { errorHandler } from './middleware/errors.js';
import { jsonBody } from './middleware/jsonBody.js';
import { methodAnswers } from './middleware/methodNotAllowed.js';
import { rateLimit } from './middleware/rateLimit.js';
import { logStreamError } from './middleware/streamErrors.js';
import { adminUserRoutes } from './routes/adminUsers/index.js';
import { auditRoutes } from './routes/audit/index.js';
import { draftRoutes } from './routes/drafts/index.js';
import { exportRoutes } from './routes/exports/index.js';
import { healthRoutes } from './routes/health/index.js';
import { historyRoutes } from './routes/history/index.js';
import { importRoutes } from './routes/imports/index.js';
import { knownFilesRoutes } from './routes/imports/known.js';
import { jobRoutes } from './routes/jobs/index.js';
import { linkRoutes } from './routes/links/index.js';
import { memberRoutes } from './routes/members/index.js';
import { metadataRoutes } from './routes/metadata/index.js';
import { projectRoutes } from './routes/projects/index.js';
import { relationshipRoutes } from './routes/relationships/index.js';
import { searchRoutes } from './routes/search/index.js';
import { signedRoutes } from './routes/signed/index.js';
import { storageRoutes } from './routes/storage/index.js';
import { structureRoutes } from './routes/structures/index.js';
import { tagRoutes } from './routes/tags/index.js';
import { teamRoutes } from './routes/teams/index.js';
import { tokenRoutes } from './routes/tokens/index.js';
import { uploadRoutes } from './routes/uploads/index.js';
import { usageRoutes } from './routes/usage/index.js';
import { viewerRoutes } from './routes/viewer/index.js';

/** Builds the Koa application (no listen): health, metrics, docs, Bull Board and the /v1 API. */
export function createApp(app: AppContext): Koa {
  const koa = new Koa({ proxy: false });
  const storage = new StorageMonitor(app);
  const metrics = createMetrics(app, storage);
  // Koa's own handler prints errors raised outside the middleware (a download stream cut off) as raw stacks.
  koa.on('error', (error: Error & { code?: string }, ctx?: Koa.Context) => logStreamError(app.log, error, ctx));
  koa.use(corsPolicy(app.config.corsOrigins));
  koa.use(errorHandler(app.log));
  koa.use(metrics.middleware);
  const health = healthRoutes(app, metrics.registry, storage);
  koa.use(health.routes());
  koa.use(bullBoard(app));

  const v1 = new Router();
  v1.use('/v1', requireUser(app), rateLimit(app));
  for (const routes of [
    projectRoutes(app),
    structureRoutes(app),
    uploadRoutes(app),
    importRoutes(app),
    jobRoutes(app),
    searchRoutes(app),
    draftRoutes(app),
    usageRoutes(app),
    adminUserRoutes(app),
    historyRoutes(app),
    metadataRoutes(app),
    tagRoutes(app),
    relationshipRoutes(app),
    exportRoutes(app),
    knownFilesRoutes(app),
    storageRoutes(app, storage),
    // Their /v1 routes are behind the token like the rest; /s/, /l/ and /viewer/ carry their own authorization.
    signedRoutes(app),
    linkRoutes(app),
    viewerRoutes(app),
    memberRoutes(app),
    teamRoutes(app),
    tokenRoutes(app),
    auditRoutes(app),
  ]) {
    v1.use(routes.routes(), routes.allowedMethods());
  }
  koa.use(methodAnswers());
  koa.use(jsonBody());
  koa.use(v1.routes());
  koa.use(v1.allowedMethods());
  return koa;
}
