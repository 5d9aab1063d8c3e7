// A port of runtime/view_state.py: what the explorer shows, as the URL's query carries it (the desktop
// app's session files hold the same state as JSON). A state here is the JSON form Python's `to_json`
// writes ({model, compare, dims, cursor, view: {x, y}, a, b, layer, points, grid: {n, source},
// uncertainty, neighbours}). Nothing is retyped: the bounds, defaults and names come from the site's
// view_state.schema.json (generated from the Python module) and config.json "view_state". A state read
// from a link never throws: what is malformed or hostile is clamped or dropped, and each repair is a
// one-line message, word for word Python's (tests/web/test_explain_parity.py compares them in Chromium).

/** The context both readers take: `schema` (view_state.schema.json), `rules` (config.json view_state),
 * `models` (the names a bundled model may take; null: any), `latentDim` (null until the model is known). */
function bounds(schema) {
  const p = schema.properties;
  return {
    latentLimit: p.cursor.items.maximum,
    maxLatentDim: p.cursor.maxItems,
    maxLocation: p.model.maxLength,
    layers: p.layer.enum,
    pointsPattern: p.points.pattern,
    maxPoints: p.points.maxLength,
    gridSizes: [p.grid.properties.n.minimum, p.grid.properties.n.maximum],
    gridSources: p.grid.properties.source.enum,
    neighbourCounts: [p.neighbours.minimum, p.neighbours.maximum],
  };
}

/** The default state: each property's schema "default" (Python's ViewState()). */
export function defaultState(schema) {
  return Object.fromEntries(Object.entries(schema.properties).map(([key, sub]) => [key, structuredClone(sub.default)]));
}

const matches = (pattern, text) => new RegExp(pattern).test(text);
const codePoints = text => [...text].length;  // as Python's len
const isObject = value => value !== null && typeof value === 'object' && !Array.isArray(value);
const isNumber = value => typeof value === 'number';
const isInteger = value => Number.isInteger(value);
const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/** Python's f"{value:.{digits}g}" (numbers in a query), "-0" written as "0". */
export function formatNumber(value, digits) {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return String(value);
  const [mantissa, exponentText] = value.toExponential(digits - 1).split('e');
  const exponent = Number(exponentText);
  const strip = text => (text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text);
  if (exponent >= -4 && exponent < digits) return strip(value.toFixed(digits - 1 - exponent));
  const sign = exponent < 0 ? '-' : '+';
  return `${strip(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}

function queryValue(value, digits) {
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (isObject(value)) return Object.values(value).map(v => queryValue(v, digits)).join(',');
  if (Array.isArray(value)) return value.map(v => queryValue(v, digits)).join(',');
  if (isNumber(value)) return formatNumber(value, digits);
  return String(value);
}

// Python's urllib.parse.urlencode(pairs, safe=",/:"): quote_plus, which also escapes !'()*.
const quote = text => encodeURIComponent(text).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  .replace(/%2C/g, ',').replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%20/g, '+');

/** A state (JSON form) -> the URL's query, without "?": the fields that differ from the defaults. */
export function toQuery(state, { schema, rules }) {
  const defaults = defaultState(schema);
  return rules.fields.filter(key => JSON.stringify(state[key]) !== JSON.stringify(defaults[key]))
    .map(key => `${quote(key)}=${quote(queryValue(state[key], rules.query_digits))}`).join('&');
}

/** A state as the session file holds it (a deep copy). */
export function toJson(state) {
  return structuredClone(state);
}

class Reader {
  constructor({ schema, rules, models = null, latentDim = null }) {
    this.b = bounds(schema);
    this.rules = rules;
    this.defaults = defaultState(schema);
    this.models = models;
    this.latentDim = latentDim;
    this.messages = [];
  }

  say(key, text) { this.messages.push(`${key}: ${text}`); }

  name(key) {
    return typeof key === 'string' && matches(this.rules.shown_key_pattern, key) ? key : this.rules.key_stand_in;
  }

  model(key, value, fallbackValue) {
    const fallback = key === 'model' ? 'the default model is shown' : 'no second model';
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') this.say(key, `expected a model name or bundle location; ${fallback}`);
    else if (codePoints(value) > this.b.maxLocation) this.say(key, `longer than ${this.b.maxLocation} characters; ${fallback}`);
    else if (matches(this.rules.name_pattern, value)) {
      if (this.models === null || this.models.includes(value)) return value;
      this.say(key, `no bundled model is called ${value}; ${fallback}`);
    } else if (matches(this.rules.location_pattern, value)) return value;
    else this.say(key, `not a model name or an http(s) URL or path of a bundle; ${fallback}`);
    return fallbackValue;
  }

  vector(key, value, size) {
    const limit = this.b.latentLimit;
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value) || value.length === 0 || !value.every(isNumber)) {
      this.say(key, 'expected a list of numbers; ignored');
      return null;
    }
    if (value.length > this.b.maxLatentDim) {
      this.say(key, `more than ${this.b.maxLatentDim} numbers; ignored`);
      return null;
    }
    if (size !== null && value.length !== size) {
      this.say(key, `expected ${size} numbers (the model's latent size), found ${value.length}; ignored`);
      return null;
    }
    if (!value.every(Number.isFinite)) {
      this.say(key, 'a number is not finite; ignored');
      return null;
    }
    if (value.some(v => Math.abs(v) > limit)) this.say(key, `numbers beyond -${limit}..${limit} clamped`);
    return value.map(v => Math.min(limit, Math.max(-limit, v)));
  }

  dims(value) {
    const size = this.latentDim || this.b.maxLatentDim;
    if (Array.isArray(value) && value.length === 2 && value.every(isInteger) && value[0] !== value[1]
        && value.every(v => v >= 0 && v < size)) return [value[0], value[1]];
    this.say('dims', `expected two different latent dims in 0..${size - 1}; ${this.defaults.dims.join(',')} shown`);
    return [...this.defaults.dims];
  }

  view(value) {
    const limit = this.b.latentLimit;
    if (value === undefined || value === null) return null;
    const keys = isObject(value) ? Object.keys(value).sort() : [];
    const spans = keys.length === 2 && keys[0] === 'x' && keys[1] === 'y' ? [value.x, value.y] : null;
    if (!spans || !spans.every(s => Array.isArray(s) && s.length === 2 && s.every(v => isNumber(v) && Number.isFinite(v)))) {
      this.say('view', 'expected x and y ranges of two finite numbers each; the home view is shown');
      return null;
    }
    const clamped = spans.map(span => span.map(v => Math.min(limit, Math.max(-limit, v))));
    if (!clamped.every(([lo, hi]) => lo < hi)) {
      this.say('view', 'a range is empty (low not below high); the home view is shown');
      return null;
    }
    if (clamped.some((span, i) => span.some((v, j) => v !== spans[i][j]))) {
      this.say('view', `ranges beyond -${limit}..${limit} clamped`);
    }
    return { x: clamped[0], y: clamped[1] };
  }

  choice(key, value, options, fallback) {
    if (typeof value === 'string' && options.includes(value)) return value;
    this.say(key, `expected one of ${options.join(', ')}; ${fallback} shown`);
    return fallback;
  }

  points(value) {
    if (typeof value === 'string' && codePoints(value) <= this.b.maxPoints && matches(this.b.pointsPattern, value)) return value;
    const colourings = this.rules.point_colourings;
    this.say('points', `expected ${colourings.join(', ')} or ${this.rules.factor_prefix}NAME; ${colourings[0]} shown`);
    return colourings[0];
  }

  count(key, value, [low, high], fallback) {
    if (!isInteger(value)) {
      this.say(key, `expected a whole number; ${fallback} shown`);
      return fallback;
    }
    if (!(low <= value && value <= high)) this.say(key, `expected ${low}..${high}; clamped`);
    return Math.min(high, Math.max(low, value));
  }

  grid(value) {
    const fallback = this.defaults.grid;
    if (!isObject(value) || Object.keys(value).some(k => k !== 'n' && k !== 'source')) {
      this.say('grid', 'expected n and source; the default grid is shown');
      return { ...fallback };
    }
    const n = this.count('grid.n', has(value, 'n') ? value.n : fallback.n, this.b.gridSizes, fallback.n);
    const source = this.choice('grid.source', has(value, 'source') ? value.source : fallback.source,
      this.b.gridSources, fallback.source);
    return { n, source };
  }

  boolean(key, value, fallback) {
    if (typeof value === 'boolean') return value;
    this.say(key, `expected true or false; ${fallback ? 'true' : 'false'} shown`);
    return fallback;
  }
}

/** [state, messages] of a session file's (or a parsed query's) value; see Python's `from_json`. */
export function fromJson(value, context) {
  const reader = new Reader(context);
  const d = reader.defaults;
  if (!isObject(value)) {
    return [d, ['(the whole state): expected an object of view-state keys; the default view is shown']];
  }
  const fields = context.rules.fields;
  const unknown = Object.keys(value).filter(key => !fields.includes(key)).map(key => reader.name(key)).sort();
  for (const key of unknown) reader.say(key, 'not a view-state key; ignored');
  const get = key => (has(value, key) ? value[key] : undefined);
  const model = reader.model('model', get('model'), d.model);
  const compare = reader.model('compare', get('compare'), d.compare);
  let dims = has(value, 'dims') ? reader.dims(get('dims')) : [...d.dims];
  const size = reader.latentDim;
  const cursor = reader.vector('cursor', get('cursor'), size);
  let a = reader.vector('a', get('a'), size), b = reader.vector('b', get('b'), size);
  const sizes = new Set([cursor, a, b].filter(v => v !== null).map(v => v.length));
  if (size === null && sizes.size > 1) {
    reader.say('a, b', 'vectors of different sizes (cursor, a, b); ignored');
    a = b = null;
  }
  if (size === null && cursor !== null && Math.max(...dims) >= cursor.length) {
    reader.say('dims', `expected two different latent dims in 0..${cursor.length - 1}; ${d.dims.join(',')} shown`);
    dims = [...d.dims];
  }
  const view = reader.view(get('view'));
  const layer = has(value, 'layer') ? reader.choice('layer', get('layer'), reader.b.layers, d.layer) : d.layer;
  const points = has(value, 'points') ? reader.points(get('points')) : d.points;
  const grid = has(value, 'grid') ? reader.grid(get('grid')) : { ...d.grid };
  const uncertainty = has(value, 'uncertainty') ? reader.boolean('uncertainty', get('uncertainty'), d.uncertainty) : d.uncertainty;
  const neighbours = has(value, 'neighbours')
    ? reader.count('neighbours', get('neighbours'), reader.b.neighbourCounts, d.neighbours) : d.neighbours;
  const state = { model, compare, dims, cursor, view, a, b, layer, points, grid, uncertainty, neighbours };
  return [state, reader.messages];
}

function fromQueryValue(key, text, rules) {
  const parse = token => (matches(rules.number_pattern, token) ? Number(token) : token);
  const tokens = text.split(',').map(parse);
  if (['model', 'compare', 'layer', 'points'].includes(key)) return text;
  if (key === 'uncertainty') return has(rules.booleans, text) ? rules.booleans[text] : text;
  if (key === 'neighbours') return tokens.length === 1 ? tokens[0] : text;
  if (key === 'view') return tokens.length === 4 ? { x: tokens.slice(0, 2), y: tokens.slice(2) } : text;
  if (key === 'grid') return tokens.length === 2 ? { n: tokens[0], source: text.split(',')[1] } : text;
  return tokens;  // dims, cursor, a, b
}

/** [state, messages] of a URL's query (with or without its "?"); a key given twice keeps its first value. */
export function fromQuery(query, context) {
  const { rules } = context;
  if (typeof query === 'string' && query.startsWith('?')) query = query.slice(1);
  if (typeof query !== 'string' || codePoints(query) > rules.max_query_chars) {
    return [defaultState(context.schema), [`(the whole state): more than the ${rules.max_query_chars} characters a `
      + 'view state may hold; the default view is shown']];
  }
  const value = Object.create(null);  // no prototype: a key such as __proto__ is just a key
  const messages = [];
  const name = key => (matches(rules.shown_key_pattern, key) ? key : rules.key_stand_in);
  for (const [key, text] of new URLSearchParams(query)) {
    if (key in value) {
      messages.push(`${name(key)}: given more than once; the first kept`);
      continue;
    }
    value[key] = rules.fields.includes(key) ? fromQueryValue(key, text, rules) : text;
  }
  const [state, more] = fromJson(value, context);
  return [state, [...messages, ...more]];
}
