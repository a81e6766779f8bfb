import { createHash, createHmac } from 'node:crypto';
import { CreateBucketCommand, HeadBucketCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { StorageFullError, StoreUnavailableError } from './blobStore.js';

export interface S3Settings {
  /** http(s)://host:port of an S3-compatible server; AWS's regional endpoint when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Prepended to every key ("molvault/"), so one bucket can hold several installations. */
  prefix: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
}

/**
 * An S3 client for molvault's stores: the SDK's standard retries (exponential backoff with jitter,
 * five attempts); request checksums only where an operation requires them, because Ceph RGW answers
 * a streamed PutObject with the SDK's default flexible checksums with 411 and ignores them anyway
 * (integrity is checked by hashing what is streamed, see promiseChecker).
 */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials:
      settings.accessKeyId && settings.secretAccessKey ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } : undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000, httpAgent: { keepAlive: true, maxSockets: 64 } },
  });
}

/** Makes the bucket if it is not there (an operator may have made it already, with its own policies). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (statusOf(error) !== 404) throw mapS3Error(error, `checking the bucket ${bucket}`);
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((created) => {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(nameOf(created))) throw mapS3Error(created, `creating the bucket ${bucket}`);
    });
  }
}

export const nameOf = (error: unknown): string => (error as { name?: string })?.name ?? '';
export const statusOf = (error: unknown): number | undefined => (error as S3ServiceException)?.$metadata?.httpStatusCode;

export function isNotFound(error: unknown): boolean {
  return ['NotFound', 'NoSuchKey', 'NoSuchUpload'].includes(nameOf(error)) || statusOf(error) === 404;
}

/** A conditional write lost (If-None-Match: the key exists, or another writer is finishing it). */
export function isConditionFailed(error: unknown): boolean {
  return ['PreconditionFailed', 'ConditionalRequestConflict'].includes(nameOf(error)) || statusOf(error) === 412 || statusOf(error) === 409;
}

const FULL = ['QuotaExceeded', 'XMinioStorageFull', 'XMinioAdminBucketQuotaExceeded', 'InsufficientStorage', 'StorageFull'];

/**
 * The store's own words for "full" become StorageFullError (answered 507 storage_full); a server that
 * cannot be reached becomes StoreUnavailableError naming what was being done. Error bodies from RGW
 * have no message, so the SDK says "UnknownError": the name and status are what count.
 */
export function mapS3Error(error: unknown, doing: string): Error {
  if (error instanceof StorageFullError || error instanceof StoreUnavailableError) return error;
  const name = nameOf(error);
  const status = statusOf(error);
  if (FULL.includes(name) || status === 507) return new StorageFullError(`${name || status} while ${doing}`);
  if (status === undefined && !(error instanceof S3ServiceException)) {
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) {
      return new StoreUnavailableError(`The object store could not be reached while ${doing} (${code}).`, error);
    }
    if (name === 'TimeoutError') return new StoreUnavailableError(`The object store did not answer in time while ${doing}.`, error);
  }
  if (error instanceof Error) return error;
  return new Error(`${doing}: ${String(error)}`);
}

/** RFC 3986 encoding as SigV4 wants it (the SDK's presigner is not among molvault's dependencies). */
const encode = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A SigV4 query-string-signed GET URL for one object (what @aws-sdk/s3-request-presigner makes). */
export function presignGetUrl(settings: S3Settings, key: string, options: { expiresInSeconds: number; query?: Record<string, string>; now?: Date }): string {
  if (!settings.accessKeyId || !settings.secretAccessKey) throw new Error('Presigned URLs need S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY.');
  const endpoint = new URL(settings.endpoint ?? `https://s3.${settings.region}.amazonaws.com`);
  const host = settings.forcePathStyle ? endpoint.host : `${settings.bucket}.${endpoint.host}`;
  const base = endpoint.pathname.replace(/\/$/, '');
  const objectPath = `${base}${settings.forcePathStyle ? `/${encode(settings.bucket)}` : ''}/${key.split('/').map(encode).join('/')}`;
  const now = options.now ?? new Date();
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${settings.region}/s3/aws4_request`;
  const query: Record<string, string> = {
    ...options.query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${settings.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(options.expiresInSeconds),
    'X-Amz-SignedHeaders': 'host',
  };
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `${encode(k)}=${encode(query[k] as string)}`)
    .join('&');
  const canonicalRequest = ['GET', objectPath, canonicalQuery, `host:${host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${settings.secretAccessKey}`, day), settings.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return `${endpoint.protocol}//${host}${objectPath}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}
