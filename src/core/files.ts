// Tessera's file container: a versioned header, named sections each with a CRC-32C, written to a temporary file,
// flushed and renamed into place, so a reader sees the old file or the new one, never half of one. Reading checks
// every offset against the file's real size before touching a section, and every checksum before returning.
//
// Layout (little-endian; offsets in bytes):
//   0  magic "TESSERA\0"          8  container version (u32)   12 header size H = 64 + 64·S (u32)
//   16 file size (u64)            24 kind, ASCII, NUL-padded (24 bytes)
//   48 kind version (u32)         52 section count S (u32)     56 reserved, zero (u32)
//   60 CRC-32C of bytes [0, H) with this field read as zero (u32)
//   64 + 64·i: section i: name, ASCII, NUL-padded (40), offset (u64), length (u64), CRC-32C of its bytes (u32),
//              reserved (u32)
//   Sections follow the header in table order, each starting on a multiple of 64 bytes (so typed views need no
//   copy); the padding between them is zero, so every byte of a file is checked.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

import { binding } from '../native/load.js';
import { expectInteger, typeName } from './validate.js';

export const CONTAINER_VERSION = 1;
const MAGIC = Buffer.from('TESSERA\0', 'latin1');
const HEADER_BYTES = 64;
const ENTRY_BYTES = 64;
const NAME_BYTES = 40;
const KIND_BYTES = 24;
const ALIGN = 64;
const MAX_SECTIONS = 4096;

/** Thrown for a file that is not a valid Tessera file of the expected kind; `code` tells which check failed. */
export class TesseraFileError extends Error {
  constructor(
    message: string,
    readonly code: 'ERR_TESSERA_FILE_CORRUPT' | 'ERR_TESSERA_FILE_KIND' | 'ERR_TESSERA_FILE_VERSION',
    readonly file: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'TesseraFileError';
  }
}

export interface TesseraFileContents {
  kind: string;
  version: number;
  /** Each section's bytes: views into one buffer, 64-byte aligned. */
  sections: Map<string, Uint8Array>;
}

export interface ReadOptions {
  /** The kind the caller expects, e.g. "binary-index". */
  kind: string;
  /** The newest kind version the caller understands; a newer file throws ERR_TESSERA_FILE_VERSION. */
  maxVersion: number;
}

function crc(bytes: Uint8Array, previous = 0): number {
  return binding().crc32c(bytes, previous);
}

function checkName(value: string, what: string, max: number): Buffer {
  if (typeof value !== 'string') throw new TypeError(`Expected ${what} to be a string, got ${typeName(value)}`);
  const bytes = Buffer.from(value, 'latin1');
  if (value.length === 0 || bytes.length > max || !/^[\x21-\x7e]+$/.test(value)) {
    throw new RangeError(`${what} must be 1 to ${max} printable ASCII characters, got ${JSON.stringify(value)}`);
  }
  return bytes;
}

function asBytes(view: ArrayBufferView, name: string): Uint8Array {
  if (!ArrayBuffer.isView(view)) throw new TypeError(`Expected section "${name}" to be a typed array, got ${typeName(view)}`);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** The header and the byte ranges of a file to write. */
function layout(kind: string, version: number, sections: Record<string, ArrayBufferView>) {
  const kindBytes = checkName(kind, '"kind"', KIND_BYTES);
  expectInteger(version, 'version', 0, 0xffffffff);
  if (sections === null || typeof sections !== 'object') {
    throw new TypeError(`Expected "sections" to be an object, got ${typeName(sections)}`);
  }
  const names = Object.keys(sections);
  if (names.length > MAX_SECTIONS) throw new RangeError(`at most ${MAX_SECTIONS} sections, got ${names.length}`);
  const headerSize = HEADER_BYTES + ENTRY_BYTES * names.length;
  const header = Buffer.alloc(headerSize);
  const parts: { offset: number; bytes: Uint8Array }[] = [];
  let offset = alignUp(headerSize);
  names.forEach((name, i) => {
    const nameBytes = checkName(name, `section name`, NAME_BYTES);
    const bytes = asBytes(sections[name] as ArrayBufferView, name);
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    nameBytes.copy(header, entry);
    header.writeBigUInt64LE(BigInt(offset), entry + NAME_BYTES);
    header.writeBigUInt64LE(BigInt(bytes.length), entry + NAME_BYTES + 8);
    header.writeUInt32LE(crc(bytes), entry + NAME_BYTES + 16);
    parts.push({ offset, bytes });
    offset = alignUp(offset + bytes.length);
  });
  const fileSize = parts.length ? parts[parts.length - 1]!.offset + parts[parts.length - 1]!.bytes.length : headerSize;
  MAGIC.copy(header, 0);
  header.writeUInt32LE(CONTAINER_VERSION, 8);
  header.writeUInt32LE(headerSize, 12);
  header.writeBigUInt64LE(BigInt(fileSize), 16);
  kindBytes.copy(header, 24);
  header.writeUInt32LE(version, 48);
  header.writeUInt32LE(names.length, 52);
  header.writeUInt32LE(crc(header), 60);  // computed with the field still zero
  return { header, parts, fileSize };
}

function temporaryName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes a Tessera file atomically: a temporary file in the same folder, flushed to disk, then renamed over `file`.
 * Throws (and leaves any previous file untouched) on any failure.
 */
export function writeTesseraFile(file: string, kind: string, version: number, sections: Record<string, ArrayBufferView>): void {
  const { header, parts } = layout(kind, version, sections);
  const tmp = temporaryName(file);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    let at = 0;
    const write = (bytes: Uint8Array, position: number) => {
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
      at = position + bytes.length;
    };
    write(header, 0);
    for (const p of parts) {
      if (p.offset > at) write(new Uint8Array(p.offset - at), at);  // zero padding to the section's alignment
      write(p.bytes, p.offset);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirectory(path.dirname(file));
}

/** writeTesseraFile() with asynchronous I/O. */
export async function writeTesseraFileAsync(
  file: string,
  kind: string,
  version: number,
  sections: Record<string, ArrayBufferView>,
): Promise<void> {
  const { header, parts } = layout(kind, version, sections);
  const tmp = temporaryName(file);
  const handle = await fsp.open(tmp, 'wx', 0o644);
  try {
    await handle.write(header, 0, header.length, 0);
    for (const p of parts) {
      for (let done = 0; done < p.bytes.length; ) {
        const { bytesWritten } = await handle.write(p.bytes, done, p.bytes.length - done, p.offset + done);
        done += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  syncDirectory(path.dirname(file));
}

/** Makes the rename itself durable; not every platform can open a folder, and losing only that is acceptable. */
function syncDirectory(dir: string): void {
  if (os.platform() === 'win32') return;
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // best effort
  }
}

function readAll(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bytes = new Uint8Array(new ArrayBuffer(size));  // its own buffer: section views stay 64-byte aligned
    for (let done = 0; done < size; ) {
      const n = fs.readSync(fd, bytes, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** Validates and splits a whole file's bytes. Every length is checked before it is used. */
export function parseTesseraFile(bytes: Uint8Array, options: ReadOptions, file = '<buffer>'): TesseraFileContents {
  const corrupt = (why: string) => new TesseraFileError(why, 'ERR_TESSERA_FILE_CORRUPT', file);
  if (bytes.length < HEADER_BYTES) throw corrupt(`too short for a Tessera file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw corrupt('not a Tessera file (bad magic)');
  const container = view.getUint32(8, true);
  if (container > CONTAINER_VERSION) {
    throw new TesseraFileError(`container version ${container} is newer than this library reads (${CONTAINER_VERSION}); upgrade tessera-native`, 'ERR_TESSERA_FILE_VERSION', file);
  }
  const headerSize = view.getUint32(12, true);
  const count = view.getUint32(52, true);
  if (count > MAX_SECTIONS || headerSize !== HEADER_BYTES + ENTRY_BYTES * count || headerSize > bytes.length) {
    throw corrupt('header size does not match its section count or the file');
  }
  const declaredSize = view.getBigUint64(16, true);
  if (declaredSize !== BigInt(bytes.length)) throw corrupt(`file is ${bytes.length} bytes, header says ${declaredSize} (truncated?)`);
  const header = Buffer.from(buf.subarray(0, headerSize));
  const storedHeaderCrc = header.readUInt32LE(60);
  header.writeUInt32LE(0, 60);
  if (crc(header) !== storedHeaderCrc) throw corrupt('header checksum mismatch');

  const kind = buf.subarray(24, 24 + KIND_BYTES).toString('latin1').replace(/\0+$/, '');
  if (kind !== options.kind) {
    throw new TesseraFileError(`holds a "${kind}", expected a "${options.kind}"`, 'ERR_TESSERA_FILE_KIND', file);
  }
  const version = view.getUint32(48, true);
  if (version > options.maxVersion) {
    throw new TesseraFileError(`"${kind}" version ${version} is newer than this library reads (${options.maxVersion}); upgrade tessera-native`, 'ERR_TESSERA_FILE_VERSION', file);
  }

  const sections = new Map<string, Uint8Array>();
  let previousEnd = headerSize;
  for (let i = 0; i < count; i++) {
    const entry = HEADER_BYTES + ENTRY_BYTES * i;
    const name = buf.subarray(entry, entry + NAME_BYTES).toString('latin1').replace(/\0+$/, '');
    const offset = view.getBigUint64(entry + NAME_BYTES, true);
    const length = view.getBigUint64(entry + NAME_BYTES + 8, true);
    if (name === '' || sections.has(name)) throw corrupt(`section ${i} has an empty or repeated name`);
    if (offset % BigInt(ALIGN) !== 0n || offset < BigInt(previousEnd) || offset + length > BigInt(bytes.length)) {
      throw corrupt(`section "${name}" lies outside the file or overlaps another`);
    }
    const start = Number(offset);
    if (bytes.subarray(previousEnd, start).some((b) => b !== 0)) throw corrupt(`non-zero padding before section "${name}"`);
    const section = bytes.subarray(start, start + Number(length));
    if (crc(section) !== view.getUint32(entry + NAME_BYTES + 16, true)) throw corrupt(`section "${name}" checksum mismatch`);
    sections.set(name, section);
    previousEnd = start + section.length;
  }
  return { kind, version, sections };
}

/** Reads and validates a Tessera file; throws TesseraFileError for anything but an intact file of the right kind. */
export function readTesseraFile(file: string, options: ReadOptions): TesseraFileContents {
  return parseTesseraFile(readAll(file), options, file);
}

/** readTesseraFile() with asynchronous I/O. */
export async function readTesseraFileAsync(file: string, options: ReadOptions): Promise<TesseraFileContents> {
  const handle = await fsp.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const bytes = new Uint8Array(new ArrayBuffer(size));
    for (let done = 0; done < size; ) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return parseTesseraFile(bytes, options, file);
  } finally {
    await handle.close();
  }
}
