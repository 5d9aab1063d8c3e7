// web/app/js/view_state.js without a browser (`node --test web/tests`). The schema and rules are made up on
// purpose (not the site's): the reader must take its bounds, defaults and patterns from what it is given.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { defaultState, formatNumber, fromJson, fromQuery, toQuery } from '../app/js/view_state.js';

const vector = { type: ['array', 'null'], minItems: 1, maxItems: 4, items: { type: 'number', minimum: -50, maximum: 50 }, default: null };
const SCHEMA = {
  properties: {
    model: { maxLength: 30, default: null }, compare: { maxLength: 30, default: null }, dims: { default: [0, 1] },
    cursor: vector, view: { default: null }, a: vector, b: vector,
    layer: { enum: ['off', 'hills'], default: 'off' },
    points: { pattern: '^(class|error|factor:[a-z]+)$', maxLength: 20, default: 'class' },
    grid: { properties: { n: { minimum: 3, maximum: 9 }, source: { enum: ['view', 'box'] } }, default: { n: 5, source: 'view' } },
    uncertainty: { default: false }, neighbours: { minimum: 1, maximum: 4, default: 2 },
  },
};
const RULES = {
  max_query_chars: 200, query_digits: 4, name_pattern: '^[a-z]+$', location_pattern: '^(https?://[^ ]+|[^ :]*/[^ ]*)$',
  number_pattern: '^-?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?$',
  fields: ['model', 'compare', 'dims', 'cursor', 'view', 'a', 'b', 'layer', 'points', 'grid', 'uncertainty', 'neighbours'],
  booleans: { 1: true, 0: false, true: true, false: false }, shown_key_pattern: '^[a-z]{1,10}$', key_stand_in: '(hidden)',
  point_colourings: ['class', 'error'], factor_prefix: 'factor:',
};
const CONTEXT = { schema: SCHEMA, rules: RULES, models: ['mnist'], latentDim: 3 };

test('the defaults come from the schema and a default state has an empty query', () => {
  const state = defaultState(SCHEMA);
  assert.deepEqual(state.grid, { n: 5, source: 'view' });
  assert.equal(state.neighbours, 2);
  assert.equal(toQuery(state, CONTEXT), '');
  assert.deepEqual(fromQuery('', CONTEXT), [state, []]);
});

test('a state round-trips through its query, numbers at the rules digits', () => {
  const state = { ...defaultState(SCHEMA), model: 'mnist', cursor: [0.5, -1.25, 3], view: { x: [-3, 3], y: [-2, 2.5] },
    layer: 'hills', points: 'factor:size', grid: { n: 7, source: 'box' }, uncertainty: true, neighbours: 4 };
  const query = toQuery(state, CONTEXT);
  assert.equal(query, 'model=mnist&cursor=0.5,-1.25,3&view=-3,3,-2,2.5&layer=hills&points=factor:size&grid=7,box&uncertainty=1&neighbours=4');
  assert.deepEqual(fromQuery(`?${query}`, CONTEXT), [state, []]);
  assert.deepEqual(fromJson(JSON.parse(JSON.stringify(state)), CONTEXT), [state, []]);
  assert.equal(formatNumber(0.123456, 4), '0.1235');
  assert.equal(formatNumber(1e-5, 4), '1e-05');
  assert.equal(formatNumber(-0, 4), '0');
  assert.equal(formatNumber(123456, 4), '1.235e+05');
  const odd = toQuery({ ...defaultState(SCHEMA), model: 'https://x.org/a b/(1)' }, CONTEXT);
  assert.equal(odd, 'model=https://x.org/a+b/%281%29');
});

test('hostile queries are repaired, one message each, never thrown', () => {
  const [state, messages] = fromQuery('cursor=1e308,0,1&a=nan,1,2&b=1,2&dims=0,7&layer=%3Cscript%3E&grid=50,view'
    + '&neighbours=0.5&uncertainty=maybe&zzz=1&__proto__=1&VeryLongKeyName=2&cursor=0,0,0&model=javascript:alert(1)', CONTEXT);
  assert.deepEqual(state, { ...defaultState(SCHEMA), cursor: [50, 0, 1], grid: { n: 9, source: 'view' } });
  assert.deepEqual(messages, [
    'cursor: given more than once; the first kept',
    '(hidden): not a view-state key; ignored',
    '(hidden): not a view-state key; ignored',
    'zzz: not a view-state key; ignored',
    'model: not a model name or an http(s) URL or path of a bundle; the default model is shown',
    'dims: expected two different latent dims in 0..2; 0,1 shown',
    'cursor: numbers beyond -50..50 clamped',
    'a: expected a list of numbers; ignored',
    'b: expected 3 numbers (the model\'s latent size), found 2; ignored',
    'layer: expected one of off, hills; off shown',
    'grid.n: expected 3..9; clamped',
    'uncertainty: expected true or false; false shown',
    'neighbours: expected a whole number; 2 shown',
  ]);
  assert.deepEqual(fromQuery('a='.padEnd(300, '1'), CONTEXT)[1],
    ['(the whole state): more than the 200 characters a view state may hold; the default view is shown']);
  assert.deepEqual(fromJson([], CONTEXT)[1], ['(the whole state): expected an object of view-state keys; the default view is shown']);
  assert.deepEqual(fromJson({ model: 'other' }, CONTEXT)[1], ['model: no bundled model is called other; the default model is shown']);
  assert.deepEqual(fromJson({ model: 'mnist\n' }, CONTEXT)[0].model, null);
  assert.deepEqual(fromJson({ view: { x: [1, 0], y: [0, 1] } }, CONTEXT)[1], ['view: a range is empty (low not below high); the home view is shown']);
});

test('before the latent size is known, vectors must agree with each other and with dims', () => {
  const context = { ...CONTEXT, latentDim: null };
  const [state, messages] = fromJson({ cursor: [0, 1], a: [1, 2, 3], dims: [0, 3] }, context);
  assert.deepEqual([state.cursor, state.a, state.dims], [[0, 1], null, [0, 1]]);
  assert.deepEqual(messages, ['a, b: vectors of different sizes (cursor, a, b); ignored',
    'dims: expected two different latent dims in 0..1; 0,1 shown']);
});
