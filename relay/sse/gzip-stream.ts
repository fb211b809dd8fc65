import { constants, crc32, deflateRawSync } from "node:zlib";

/** A gzip member header: deflate, no file name or time, OS unknown (RFC 1952). */
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** An empty final block (fixed Huffman, end-of-block only): ends the deflate data before the trailer. */
const FINAL_BLOCK = [0x03, 0x00];

// Small enough that a context is cheap to set up per frame; 8 KiB of window still finds the
// repetition inside a large JSON message.
const OPTIONS = { level: 6, windowBits: 13, memLevel: 6, finishFlush: constants.Z_FULL_FLUSH };

const deflated = new WeakMap<Buffer, Buffer>();

/**
 * A frame as raw deflate blocks that end with a full flush: byte-aligned, and referring to
 * nothing before them, so they decode after whatever frames a client got earlier. Each frame
 * is compressed once (cached by identity) and the same bytes go to every compressing client,
 * as uncompressed frames do; and since each ends in a flush, no event waits in a compressor.
 */
export function deflateFrame(frame: Buffer): Buffer {
  let z = deflated.get(frame);
  if (!z) {
    z = deflateRawSync(frame, OPTIONS);
    deflated.set(frame, z);
  }
  return z;
}

/**
 * One client's `Content-Encoding: gzip` stream: the member header first, then each frame's
 * shared deflate blocks, and at a clean end the final block and the trailer (CRC-32 and
 * length of what this client was sent, the only per-client state).
 */
export class GzipStream {
  private crc = 0;
  private size = 0;

  header(): Buffer {
    return HEADER;
  }

  encode(frame: Buffer): Buffer {
    this.crc = crc32(frame, this.crc);
    this.size = (this.size + frame.length) >>> 0;
    return deflateFrame(frame);
  }

  trailer(): Buffer {
    const t = Buffer.from([...FINAL_BLOCK, 0, 0, 0, 0, 0, 0, 0, 0]);
    t.writeUInt32LE(this.crc >>> 0, 2);
    t.writeUInt32LE(this.size, 6);
    return t;
  }
}

/** Does this `Accept-Encoding` accept gzip (named, with a q-value above 0)? */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(",")) {
    const [name, ...params] = part.split(";");
    if (name.trim().toLowerCase() !== "gzip") continue;
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}
