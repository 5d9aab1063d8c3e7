// Reads numpy .npz archives (what np.savez / np.savez_compressed write) in the browser, so the page
// reads the bundle's atlas.npz as it is: zip central directory -> stored or deflated members
// (DecompressionStream 'deflate-raw') -> .npy header -> typed array.

const DTYPES = {
  '<f4': Float32Array, '<f8': Float64Array, '|u1': Uint8Array, '|i1': Int8Array, '<u1': Uint8Array,
  '<i2': Int16Array, '<u2': Uint16Array, '<i4': Int32Array, '<u4': Uint32Array,
  '<i8': BigInt64Array, '<u8': BigUint64Array, '|b1': Uint8Array,
};

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

/** bytes of an .npz -> {name: {data: TypedArray, shape: number[], dtype: string}} */
export async function readNpz(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = centralDirectory(view);
  const arrays = {};
  for (const entry of entries) {
    if (!entry.name.endsWith('.npy')) continue;
    const member = await extract(bytes, view, entry);
    arrays[entry.name.slice(0, -4)] = readNpy(member);
  }
  return arrays;
}

function centralDirectory(view) {
  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let i = view.byteLength - 22; i >= Math.max(0, view.byteLength - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD_SIGNATURE) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end-of-central-directory record)');
  const count = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  const entries = [];
  for (let i = 0; i < count; i++) {
    if (view.getUint32(offset, true) !== CENTRAL_SIGNATURE) throw new Error('corrupt zip central directory');
    const method = view.getUint16(offset + 10, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const localOffset = view.getUint32(offset + 42, true);
    const name = decoder.decode(new Uint8Array(view.buffer, view.byteOffset + offset + 46, nameLength));
    if (compressedSize === 0xffffffff || localOffset === 0xffffffff) throw new Error(`${name}: zip64 members are not supported`);
    entries.push({ name, method, compressedSize, size, localOffset });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

async function extract(bytes, view, entry) {
  const at = entry.localOffset;
  if (view.getUint32(at, true) !== LOCAL_SIGNATURE) throw new Error(`${entry.name}: corrupt zip member`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const data = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method !== 8) throw new Error(`${entry.name}: zip method ${entry.method} is not supported (expected stored or deflate)`);
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const out = new Uint8Array(await new Response(stream).arrayBuffer());
  if (out.length !== entry.size) throw new Error(`${entry.name}: inflated to ${out.length} bytes, expected ${entry.size}`);
  return out;
}

/** bytes of one .npy file -> {data, shape, dtype} (C order only, no pickles). */
export function readNpy(bytes) {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new Error('not a .npy array');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`unreadable .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new Error('Fortran-order .npy arrays are not supported');
  const Type = DTYPES[descr];
  if (!Type) throw new Error(`.npy dtype ${descr} is not supported`);
  const shape = shapeText.split(',').map(s => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  // Copy into an aligned buffer: the data offset need not be a multiple of the element size.
  const raw = bytes.slice(start, start + count * Type.BYTES_PER_ELEMENT);
  if (raw.length !== count * Type.BYTES_PER_ELEMENT) throw new Error('truncated .npy array');
  return { data: new Type(raw.buffer), shape, dtype: descr };
}
