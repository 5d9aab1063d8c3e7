// Reads numpy .npz archives (what np.savez / np.savez_compressed write) in the browser, so the page
// reads the bundle's atlas.npz as it is: zip central directory -> stored or deflated members
// (DecompressionStream 'deflate-raw') -> .npy header -> typed array. An archive is untrusted input
// (untrusted.js): every member's header is read and checked against the limits, and against the other
// arrays' lengths, before any array is inflated, and no member is inflated beyond what its header promised.
import { checkArray, checkRows, getLimits } from './untrusted.js';

const DTYPES = {
  '<f4': Float32Array, '<f8': Float64Array, '|u1': Uint8Array, '|i1': Int8Array, '<u1': Uint8Array,
  '<i2': Int16Array, '<u2': Uint16Array, '<i4': Int32Array, '<u4': Uint32Array,
  '<i8': BigInt64Array, '<u8': BigUint64Array, '|b1': Uint8Array,
};

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const NPY_PREAMBLE = 12;  // magic, version and (version 2) the header length: enough to know the rest

/** bytes of an .npz -> {name: {data: TypedArray, shape: number[], dtype: string}}; with `rows`, the arrays
 * are columns of one table (same length, at most max_atlas_rows), checked before any is inflated. */
export async function readNpz(buffer, { rows = false } = {}) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = centralDirectory(view);
  const headers = [];
  for (const entry of entries) {
    if (!entry.name.endsWith('.npy')) throw new Error(`${entry.name}: not an .npy array (an .npz of a bundle holds only arrays)`);
    const member = openMember(bytes, view, entry);
    const header = await readNpyHeader(member, entry.name);
    member.cancel();
    headers.push({ entry, header, bytes: checkArray(entry.name, header, entry.size) });
  }
  if (rows) checkRows(Object.fromEntries(headers.map(({ entry, header }) => [entry.name, header.shape])));
  const arrays = {};
  for (const { entry, header, bytes: size } of headers) {
    const member = openMember(bytes, view, entry);
    await member.read(header.dataOffset);
    const raw = await member.read(size);  // a fresh, aligned buffer: inflates no more than the header promised
    member.cancel();
    if (raw.length !== size) throw new Error(`${entry.name}: truncated .npy array`);
    arrays[entry.name.slice(0, -4)] = { data: new header.Type(raw.buffer, raw.byteOffset, size / header.itemSize), shape: header.shape, dtype: header.dtype };
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
  const { max_npz_members: maxMembers } = getLimits();
  if (count > maxMembers) throw new Error(`${count} members, more than the ${maxMembers} an .npz of a bundle may hold`);
  let offset = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  const entries = [];
  for (let i = 0; i < count; i++) {
    if (offset + 46 > view.byteLength || view.getUint32(offset, true) !== CENTRAL_SIGNATURE) throw new Error('corrupt zip central directory');
    const method = view.getUint16(offset + 10, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const localOffset = view.getUint32(offset + 42, true);
    const name = decoder.decode(new Uint8Array(view.buffer, view.byteOffset + offset + 46, Math.min(nameLength, view.byteLength - offset - 46)));
    if (compressedSize === 0xffffffff || localOffset === 0xffffffff) throw new Error(`${name}: zip64 members are not supported`);
    entries.push({ name, method, compressedSize, size, localOffset });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** A member's inflated bytes, read in order: read(n) -> the next n bytes (fewer at the end); cancel(). */
function openMember(bytes, view, entry) {
  const at = entry.localOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== LOCAL_SIGNATURE) throw new Error(`${entry.name}: corrupt zip member`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const data = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) {
    let position = 0;
    return {
      async read(n) { const out = data.slice(position, position + n); position += out.length; return out; },
      cancel() {},
    };
  }
  if (entry.method !== 8) throw new Error(`${entry.name}: zip method ${entry.method} is not supported (expected stored or deflate)`);
  const reader = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  let pending = new Uint8Array(0);
  return {
    async read(n) {
      const out = new Uint8Array(n);
      let have = Math.min(n, pending.length);
      out.set(pending.subarray(0, have));
      pending = pending.subarray(have);
      while (have < n) {
        const { done, value } = await reader.read();
        if (done) break;
        const take = Math.min(n - have, value.length);
        out.set(value.subarray(0, take), have);
        pending = value.subarray(take);
        have += take;
      }
      return have === n ? out : out.slice(0, have);
    },
    cancel() { reader.cancel().catch(() => {}); },
  };
}

/** The .npy header of a member, from its first bytes only: {shape, dtype, Type, itemSize, dataOffset}. */
async function readNpyHeader(member, name) {
  const preamble = await member.read(NPY_PREAMBLE);
  if (preamble.length < 10 || String.fromCharCode(...preamble.subarray(0, 6)) !== '\x93NUMPY') throw new Error(`${name}: not a .npy array`);
  const major = preamble[6];
  const view = new DataView(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const { max_npy_header_bytes: maxHeader } = getLimits();
  if (headerLength > maxHeader) throw new Error(`${name}: .npy header of ${headerLength} bytes, more than the ${maxHeader} allowed`);
  const rest = await member.read(headerStart + headerLength - NPY_PREAMBLE);
  const all = new Uint8Array(preamble.length + rest.length);
  all.set(preamble);
  all.set(rest, preamble.length);
  const header = new TextDecoder().decode(all.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: unreadable .npy header: ${header.trim().slice(0, 200)}`);
  if (fortran === 'True') throw new Error(`${name}: Fortran-order .npy arrays are not supported`);
  const Type = DTYPES[descr];
  if (!Type) throw new Error(`${name}: dtype ${descr} is refused (expected numbers; pickled objects are never loaded)`);
  const shape = shapeText.split(',').map(s => s.trim()).filter(Boolean).map(Number);
  if (shape.some(n => !Number.isSafeInteger(n) || n < 0)) throw new Error(`${name}: unreadable .npy shape (${shapeText})`);
  return { shape, dtype: descr, Type, itemSize: Type.BYTES_PER_ELEMENT, dataOffset: headerStart + headerLength };
}
