import Router from '@koa/router';
import { serializeUpload } from '../../../entities/serialize.js';
import type { AppContext } from '../../../runtime/context.js';
import { access } from '../../access.js';
import { errorSchema } from '../../openapi.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { uploadSchema } from '../../schemas/structures.js';

export function uploadRoutes(app: AppContext): Router {
  const router = new Router();
  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/uploads/:id',
      access: { on: 'upload', need: 'read' },
      summary: "An upload's state, read from Postgres (it survives a Redis loss)",
      tag: 'Structures',
      params: idParams,
      responses: { 200: { description: 'The upload', schema: uploadSchema }, 404: { description: 'Not found', schema: errorSchema } },
    },
    async ({ params, user }) => {
      return serializeUpload(await access(app.orm.em.fork(), user).upload(params.id));
    },
  );
  return router;
}
