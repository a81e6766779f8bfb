import { z } from 'zod';

/** A job as presentJob shows it (GET /v1/jobs/:id, and a 202 route's answer once its job ended within Prefer: wait). */
export const jobSchema = z.object({
  id: z.string(),
  queue: z.string(),
  name: z.string(),
  state: z.string(),
  progress: z.unknown(),
  attempts: z.number(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
});
