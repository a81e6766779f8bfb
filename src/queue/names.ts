/** Every BullMQ queue molvault runs; a job contract names one of them. */
export const QUEUE_NAMES = ['ingest', 'validate', 'snapshot', 'index', 'cleanup', 'diff', 'backup', 'convert', 'export'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
