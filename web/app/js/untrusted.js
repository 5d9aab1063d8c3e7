// The browser's side of runtime/untrusted.py: bundles a user opens from their disk are read as hostile,
// by the same rules as the Python runtime (strict JSON: a size and a nesting limit, no non-finite numbers,
// integers JavaScript holds exactly; .npz arrays checked against their headers before they are inflated).
// The limits are Python's (runtime/limits.py): web/site.py writes them into config.json under
// "untrusted", and the page hands them to setLimits before it opens a bundle.

const LIMIT_NAMES = ['max_json_bytes', 'max_json_depth', 'max_json_integer', 'max_npz_members',
  'max_npz_array_bytes', 'max_atlas_rows', 'max_npy_header_bytes'];

let limits = null;

/** config.json's "untrusted" object -> the limits every check below applies. */
export function setLimits(values) {
  const missing = LIMIT_NAMES.filter(name => !Number.isSafeInteger(values?.[name]));
  if (missing.length) throw new Error(`config.json "untrusted" lacks ${missing.join(', ')}; rebuild the site with 'latent-atlas web --out'`);
  limits = Object.freeze(Object.fromEntries(LIMIT_NAMES.map(name => [name, values[name]])));
}

export function getLimits() {
  if (!limits) throw new Error('the limits for untrusted files are not loaded (config.json "untrusted")');
  return limits;
}

/** How deeply arrays and objects nest in JSON bytes, counted without parsing (brackets outside strings). */
export function jsonDepth(bytes) {
  let depth = 0, deepest = 0, inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;  // the escaped character cannot end the string
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

class Refused {
  constructor(reason) { this.reason = reason; }
}

function findRefused(value, field = '') {
  if (value instanceof Refused) return [field || '(top level)', value.reason];
  if (value === null || typeof value !== 'object') return null;
  const children = Array.isArray(value)
    ? value.map((child, i) => [`${field}[${i}]`, child])
    : Object.entries(value).map(([key, child]) => [field ? `${field}.${key}` : key, child]);
  for (const [name, child] of children) {
    const found = findRefused(child, name);
    if (found) return found;
  }
  return null;
}

/** JSON bytes -> value, strictly; an Error naming `source` and, where it can, the field. */
export function parseJson(bytes, source) {
  const { max_json_bytes: maxBytes, max_json_depth: maxDepth, max_json_integer: maxInteger } = getLimits();
  if (bytes.length > maxBytes) throw new Error(`${source}: ${bytes.length} bytes, more than the ${maxBytes} a JSON file of a bundle may hold`);
  const depth = jsonDepth(bytes);
  if (depth > maxDepth) throw new Error(`${source}: nested ${depth} levels deep, more than the ${maxDepth} allowed`);
  let text;
  try {
    // ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it as Python's json does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error(`${source}: not UTF-8 text`);
  }
  let refused = false;
  let value;
  try {
    value = JSON.parse(text, (key, item, context) => {
      if (typeof item !== 'number') return item;
      const literal = context?.source ?? String(item);
      if (!Number.isFinite(item)) {
        refused = true;
        return new Refused(`number ${literal.slice(0, 24)} is out of the float64 range`);
      }
      const integral = context?.source !== undefined ? /^-?\d+$/.test(literal) : Number.isInteger(item);
      if (integral && Math.abs(item) > maxInteger) {
        refused = true;
        return new Refused(`integer ${literal.slice(0, 24)}${literal.length > 24 ? '...' : ''} is beyond +-${maxInteger} (larger ones differ between Python and JavaScript)`);
      }
      return item;
    });
  } catch (error) {
    throw new Error(`${source}: not valid JSON (${error.message})`);
  }
  if (refused) {
    const [field, reason] = findRefused(value);
    throw new Error(`${source}: ${field}: ${reason}`);
  }
  return value;
}

/** Checks one .npy header against the limits and the size the zip records; returns its byte count. */
export function checkArray(name, { shape, itemSize, dataOffset }, recordedSize) {
  const { max_npz_array_bytes: maxBytes } = getLimits();
  const bytes = shape.reduce((a, b) => a * b, 1) * itemSize;
  if (!Number.isSafeInteger(bytes) || bytes > maxBytes) {
    throw new Error(`${name}: shape [${shape}] is ${bytes} bytes, more than the ${maxBytes} an array of a bundle may hold`);
  }
  if (recordedSize !== dataOffset + bytes) {
    throw new Error(`${name}: the header's shape [${shape}] does not match the ${recordedSize} bytes the zip records`);
  }
  return bytes;
}

/** Arrays that are columns of one table: the same length, at most max_atlas_rows. */
export function checkRows(shapes) {
  const { max_atlas_rows: maxRows } = getLimits();
  const lengths = Object.values(shapes).map(shape => shape[0]);
  if (lengths.some(length => length === undefined) || new Set(lengths).size > 1) {
    throw new Error(`arrays of different lengths ${JSON.stringify(shapes)} (expected one row per point in each)`);
  }
  if (lengths.length && lengths[0] > maxRows) throw new Error(`${lengths[0]} rows, more than the ${maxRows} a bundle's table may hold`);
}
