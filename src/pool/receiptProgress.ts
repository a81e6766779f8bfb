/**
 * The shared progress of a PDB upload parsed from its staged file as it arrives (CpuPool.receiveFile
 * writes it, tasks.ts `receiveFile` reads it): bytes received, then the receipt's state. A module of
 * its own so that the main thread, which imports these values, does not load the parse threads' code.
 */
export const RECEIPT_SLOTS = 2;
export const RECEIPT_COMPLETE = 1;
export const RECEIPT_DROPPED = 2;
