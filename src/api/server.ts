import http from 'node:http';
import { codeSource } from '../lib/codeSource.js';
import type { AppContext } from '../runtime/context.js';
import { createApp } from './app.js';

/** Listens; resolves with the server and its bound port. */
export async function startApiServer(app: AppContext, port = app.config.port, host = app.config.host) {
  const koa = createApp(app);
  const server = http.createServer(koa.callback());
  // Large uploads take time: no request timeout, but keep idle sockets bounded.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${port} on ${host} is already in use; set PORT to another one.`) : error),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  app.log.info({ url: `http://${host}:${boundPort}`, code: codeSource() }, 'API listening');
  return {
    server,
    port: boundPort,
    /**
     * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then
     * drops what is left (keep-alive pollers, event streams) so shutdown cannot hang.
     */
    close: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
