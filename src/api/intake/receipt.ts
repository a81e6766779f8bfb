import { sniffCompression, sniffFormat } from '../../formats/sniff.js';
import type { Format, ParseOutcome } from '../../formats/types.js';
import type { Receipt } from '../../pool/cpuPool.js';
import { type AppContext, receiptCpuPool } from '../../runtime/context.js';
import type { UploadObserver } from '../http/uploadBody.js';

/** What the sniff reads: as much as the ingest's sniff of the stored file reads, so both decide alike. */
const HEAD_BYTES = 64 * 1024;
/**
 * From this size an upload is parsed while it arrives: below it, parsing after the upload costs
 * little next to the upload itself.
 */
export const PARSE_ON_RECEIPT_MIN_BYTES = 4 * 1024 * 1024;

/** A structure parsed while it was received, sound: validation has nothing left to do. */
export type ParsedOnReceipt = Extract<ParseOutcome, { ok: true }>;

/**
 * Parses an upload in the process's CPU pool while its bytes arrive (CpuPool.receiveFile for a PDB
 * file staged on this host, read from its staged file; CpuPool.receive otherwise), when it is
 * large enough, plain (not compressed) content of a format molvault reads (sessions are read by
 * their header, later), and a thread is free now; otherwise it does nothing and the upload is
 * validated as usual. Only a sound outcome is kept: a file it finds unsound is parsed again by
 * the validate stage, which refuses it with the same reasons.
 */
export class ReceiptParse implements UploadObserver {
  private head: Buffer[] = [];
  private headBytes = 0;
  private receipt: Receipt | undefined;
  private off = false;
  private format: Format | undefined;
  private ended: Promise<ParseOutcome | undefined> | undefined;

  private constructor(
    private readonly app: AppContext,
    private readonly maxBytes: number,
    private readonly stagedFile: string | undefined,
  ) {}

  /**
   * For the upload `uploadId`, a request announcing `declaredBytes`, or undefined when it is not
   * worth it or turned off (PARSE_ON_RECEIPT).
   */
  static for(app: AppContext, declaredBytes: number, uploadId: string): ReceiptParse | undefined {
    if (!app.config.parseOnReceipt || declaredBytes < PARSE_ON_RECEIPT_MIN_BYTES) return undefined;
    return new ReceiptParse(app, declaredBytes, app.staging.writtenFile(uploadId));
  }

  data(chunk: Buffer): void {
    if (this.off) return;
    if (this.receipt) {
      this.receipt.push(chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes >= HEAD_BYTES) this.start();
  }

  end(): void {
    if (!this.off && !this.receipt) this.start();
    if (this.receipt) this.ended = this.receipt.end();
    this.off = true;
  }

  /** The upload was refused or broke off. */
  abort(): void {
    this.off = true;
    this.receipt?.abort();
  }

  /** The outcome once the last byte was in, if it is sound and of `format`. */
  async outcome(): Promise<{ format: Format; outcome: ParsedOnReceipt } | undefined> {
    const outcome = await this.ended;
    if (!outcome?.ok || !this.format) return undefined;
    return { format: this.format, outcome };
  }

  private start(): void {
    const head = Buffer.concat(this.head);
    this.head = [];
    const format = sniffCompression(head) ? undefined : sniffFormat(head.subarray(0, HEAD_BYTES)).format;
    const { pool, leave } = receiptCpuPool(this.app);
    // A PDB file staged on this host is read from its file as it is written, not copied as it comes.
    const receipt =
      format === 'pdb' && this.stagedFile
        ? pool.receiveFile(this.stagedFile, this.maxBytes, leave)
        : format && format !== 'cxs'
          ? pool.receive(format, this.maxBytes, leave)
          : undefined;
    if (!receipt) {
      this.off = true;
      return;
    }
    this.format = format;
    this.receipt = receipt;
    receipt.push(head);
  }
}
