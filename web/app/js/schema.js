// The validator for the JSON-Schema subset the bundle format uses: runtime/json_schema.py in JavaScript.
// Both check the keywords in the same order and stop at the first error, so the browser and Python
// refuse the same bundle.json files and name the same field path. The schema itself is not written
// here: it is the site's bundle.schema.json, generated from runtime/bundle_schema.py.

/** The JSON type name of a parsed JSON value, as the errors name it ("integer" for whole numbers). */
export function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;  // boolean, string, object (and undefined, which JSON never gives)
}

const isObject = value => jsonType(value) === 'object';
const TYPE_TESTS = {
  null: value => value === null,
  boolean: value => typeof value === 'boolean',
  integer: value => Number.isInteger(value),
  number: value => typeof value === 'number' && Number.isFinite(value),
  string: value => typeof value === 'string',
  array: value => Array.isArray(value),
  object: isObject,
};

const length = value => [...value].length;  // code points, as Python's len (not UTF-16 units)

// The bounds: [keyword, the values it applies to, what it bounds, whether it is a lower bound, the words].
const BOUNDS = [
  ['minimum', TYPE_TESTS.number, value => value, true, 'a number >= {}'],
  ['maximum', TYPE_TESTS.number, value => value, false, 'a number <= {}'],
  ['minLength', TYPE_TESTS.string, length, true, 'at least {} characters'],
  ['maxLength', TYPE_TESTS.string, length, false, 'at most {} characters'],
  ['minItems', TYPE_TESTS.array, value => value.length, true, 'at least {} items'],
  ['maxItems', TYPE_TESTS.array, value => value.length, false, 'at most {} items'],
];

/** A value as JSON, shortened: errors stay one line. */
function shown(value) {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 40 ? text : text.slice(0, 37) + '...';
}

function child(path, key) {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** Where a value breaks its schema (a field path such as `dataset.class_names[0]`) and how. */
export class SchemaError {
  constructor(path, message) {
    this.path = path;
    this.message = message;
  }

  toString() {
    return `${this.path || '(the whole document)'}: ${this.message}`;
  }
}

/** The first place where `value` breaks `schema`, or null when it conforms. */
export function firstError(schema, value, path = '') {
  if (schema.type !== undefined) {
    const names = typeof schema.type === 'string' ? [schema.type] : schema.type;
    if (!names.some(name => TYPE_TESTS[name](value))) {
      return new SchemaError(path, `expected ${names.join(' or ')}, found ${jsonType(value)} ${shown(value)}`);
    }
  }
  // Strict equality is JSON's for scalars: true is not 1, and 1.0 is 1.
  if (schema.enum !== undefined && !schema.enum.some(option => option === value)) {
    return new SchemaError(path, `expected one of ${schema.enum.map(shown).join(', ')}, found ${shown(value)}`);
  }
  for (const [keyword, applies, measure, lower, expected] of BOUNDS) {
    if (schema[keyword] !== undefined && applies(value)) {
      const size = measure(value), bound = schema[keyword];
      if (lower ? size < bound : size > bound) {
        return new SchemaError(path, `expected ${expected.replace('{}', bound)}, found ${shown(size)}`);
      }
    }
  }
  if (typeof value === 'string' && schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
    return new SchemaError(path, `expected a string matching ${schema.pattern}, found ${shown(value)}`);
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    for (let i = 0; i < value.length; i++) {
      const error = firstError(schema.items, value[i], child(path, i));
      if (error) return error;
    }
  }
  return isObject(value) ? objectError(schema, value, path) : null;
}

function objectError(schema, value, path) {
  const has = key => Object.prototype.hasOwnProperty.call(value, key);
  for (const key of schema.required || []) {
    if (!has(key)) return new SchemaError(child(path, key), 'missing (a required key)');
  }
  const properties = schema.properties || {};
  for (const [key, subschema] of Object.entries(properties)) {
    if (has(key)) {
      const error = firstError(subschema, value[key], child(path, key));
      if (error) return error;
    }
  }
  const extra = schema.additionalProperties ?? true;
  for (const [key, item] of Object.entries(value)) {
    if (Object.prototype.hasOwnProperty.call(properties, key) || extra === true) continue;
    if (extra === false) return new SchemaError(child(path, key), 'not a known key here');
    const error = firstError(extra, item, child(path, key));
    if (error) return error;
  }
  return null;
}
