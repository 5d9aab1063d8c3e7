// Loads a latent-atlas model bundle (bundle.json, encoder.onnx, decoder.onnx, atlas.npz) from the
// site or from files the user picked, checks it, and wraps its two ONNX sessions. Every problem
// becomes a BundleError whose message names what was expected; the page shows it. bundle.json is
// checked against the site's bundle.schema.json, the schema Python's runtime checks it against.
import { readNpz } from './npz.js';
import { SEED_SHAPE, pixelCount } from './pictures.js';
import { firstError } from './schema.js';
import { parseJson } from './untrusted.js';

export class BundleError extends Error {}

// `latent-atlas web` puts the schema at the site's root, beside index.html and js/.
const SCHEMA_URL = new URL('../bundle.schema.json', import.meta.url);
const MODEL_FILES = ['encoder.onnx', 'decoder.onnx', 'atlas.npz'];
// Optional (runtime/bundle.py ATLAS_EXTRA): thumbnails, posterior log-variances, reconstruction errors and
// known factors of the atlas points. Without it (or with a broken one) the model still loads, and the
// neighbours panel, the aggregate layer and the error colouring say why they are empty.
const EXTRA_FILE = 'atlas_extra.npz';

/** A source of bundle files: a URL folder of the site, or a File list from the disk. `label` names it in
 * the status bar, `prefix` starts the messages about its files, `name` in a link's view state (a bundled
 * model's name or the folder's location; none for files from the disk, which a link cannot reopen). */
export function urlSource(base, name = base) {
  const folder = base.endsWith('/') ? base : base + '/';
  return {
    name,
    label: folder,
    prefix: folder,
    async read(name) {
      let response;
      try {
        response = await fetch(new URL(name, new URL(folder, location.href)));
      } catch (error) {
        throw new BundleError(`${folder}${name}: could not be fetched (${error.message})`);
      }
      if (!response.ok) throw new BundleError(`${folder}${name}: missing (HTTP ${response.status}); a bundle needs bundle.json, ${MODEL_FILES.join(', ')}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

export function fileSource(files) {
  const byName = new Map([...files].map(file => [file.name, file]));
  const folder = files[0]?.webkitRelativePath?.split('/')[0] || '';
  return {
    name: null,
    label: folder || 'the chosen files',
    prefix: folder ? `${folder}/` : '',
    async read(name) {
      const file = byName.get(name);
      if (!file) throw new BundleError(`${folder || 'the chosen files'}: missing ${name}; a bundle needs bundle.json, ${MODEL_FILES.join(', ')} (choose the bundle folder or all four files)`);
      return new Uint8Array(await file.arrayBuffer());
    },
  };
}

let schemaRequest = null;

/** The bundle format's JSON Schema (fetched once per page). */
export function bundleSchema() {
  schemaRequest ??= (async () => {
    const response = await fetch(SCHEMA_URL).catch(error => ({ ok: false, status: error.message }));
    if (!response.ok) {
      schemaRequest = null;  // a later load tries again
      throw new BundleError(`${SCHEMA_URL}: the bundle schema could not be fetched (${response.status}); build the site with 'latent-atlas web'`);
    }
    return response.json();
  })();
  return schemaRequest;
}

/** A BundleError naming the file and the field path where `manifest` breaks the bundle format, if it does. */
export function checkManifest(manifest, schema, label = '') {
  const error = firstError(schema, manifest);
  if (error && (error.path === '' || error.path === 'schema_version')) {
    throw new BundleError(`${label}bundle.json: not a latent-atlas bundle manifest of schema_version ${schema.properties.schema_version.enum[0]} (${error}); export one with 'latent-atlas export'`);
  }
  if (error) throw new BundleError(`${label}bundle.json: ${error}`);
}

// What the browser's map needs beyond the format: two latent dims to draw and each dim's percentiles.
function checkMappable(manifest, label) {
  const dim = manifest.latent_dim;
  if (dim < 2) {
    throw new BundleError(`${label}bundle.json: latent_dim must be an integer >= 2 for the map, found ${JSON.stringify(dim)}`);
  }
  for (const key of ['p01', 'p05', 'p95', 'p99']) {
    const values = manifest.latent_stats[key];
    if (!Array.isArray(values) || values.length !== dim) {
      throw new BundleError(`${label}bundle.json: latent_stats.${key} must hold ${dim} values (one per latent dim)`);
    }
  }
}

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}

/** Requests all of a bundle's files at once: {name: Promise<bytes>}. */
export function startReads(source) {
  const reads = Object.fromEntries(['bundle.json', ...MODEL_FILES].map(name => [name, source.read(name)]));
  for (const promise of Object.values(reads)) promise.catch(() => {});  // reported by readBundle, in order
  bundleSchema().catch(() => {});  // fetched beside the files; readBundle reports a failure
  return reads;
}

/** source -> {manifest, files: {name: bytes}, atlas: {z, labels, count}} with every check done. */
export async function readBundle(source, reads = startReads(source)) {
  const label = source.prefix;
  let manifest;
  try {
    manifest = parseJson(await reads['bundle.json'], `${label}bundle.json`);  // untrusted.js: the runtime's rules
  } catch (error) {
    throw new BundleError(`${error.message}; expected a latent-atlas bundle manifest`);
  }
  checkManifest(manifest, await bundleSchema(), label);
  checkMappable(manifest, label);
  const files = {};
  for (const name of MODEL_FILES) files[name] = await reads[name];
  // Checksums need WebCrypto, which browsers offer on https and localhost pages only.
  if (globalThis.crypto?.subtle) {
    for (const name of MODEL_FILES) {
      const expected = manifest.files?.[name]?.sha256;
      if (expected && await sha256Hex(files[name]) !== expected) {
        throw new BundleError(`${label}${name}: SHA-256 does not match bundle.json (corrupt or modified file)`);
      }
    }
  }
  let arrays;
  try {
    arrays = await readNpz(files['atlas.npz'], { rows: true });
  } catch (error) {
    throw new BundleError(`${label}atlas.npz: not a readable atlas (${error.message}); expected an .npz with z_mean and labels`);
  }
  const z = arrays.z_mean, labels = arrays.labels;
  const dim = manifest.latent_dim;
  if (!z || !labels || z.dtype !== '<f4' || z.shape.length !== 2 || z.shape[1] !== dim || labels.shape[0] !== z.shape[0]) {
    throw new BundleError(`${label}atlas.npz: expected z_mean float32 [M, ${dim}] and labels [M], found ` +
      `z_mean ${z ? `${z.dtype} [${z.shape}]` : 'missing'}, labels ${labels ? `[${labels.shape}]` : 'missing'}`);
  }
  const labelValues = Array.from(labels.data, Number);
  // Off the first image's path: what explains the model arrives after it (Model.attachExtra).
  const extraReady = readExtra(source, manifest, z.shape[0]);
  return { manifest, files, atlas: { z: z.data, labels: labelValues, count: z.shape[0], extra: { problem: `${EXTRA_FILE} is still loading` }, extraReady } };
}

/** The bundle's atlas_extra.npz as {arrays: {thumbnails, z_logvar, recon_error, factors}} checked as Python's
 * _check_atlas_extra checks it, or {problem} saying why there is none. */
async function readExtra(source, manifest, points) {
  const label = source.prefix;
  if (!manifest.files?.[EXTRA_FILE]) return { problem: `this bundle has no ${EXTRA_FILE} (export it without --no-atlas-extra)` };
  let bytes;
  try {
    bytes = await source.read(EXTRA_FILE);
  } catch (error) {
    return { problem: error.message };
  }
  if (globalThis.crypto?.subtle && await sha256Hex(bytes) !== manifest.files[EXTRA_FILE].sha256) {
    return { problem: `${label}${EXTRA_FILE}: SHA-256 does not match bundle.json (corrupt or modified file)` };
  }
  let arrays;
  try {
    arrays = await readNpz(bytes, { rows: true });
  } catch (error) {
    return { problem: `${label}${EXTRA_FILE}: not readable (${error.message})` };
  }
  const dim = manifest.latent_dim, factorNames = manifest.dataset.factor_names ?? [];
  const { thumbnails: thumbs, z_logvar: logvar, recon_error: error, factors } = arrays;
  const finite = array => array.data.every(Number.isFinite);
  const good = thumbs?.dtype === '|u1' && [3, 4].includes(thumbs.shape.length) && thumbs.shape[0] === points
    && (thumbs.shape.length === 3 || thumbs.shape[3] === 3) && Math.min(thumbs.shape[1], thumbs.shape[2]) > 0
    && logvar?.dtype === '<f4' && logvar.shape.join() === `${points},${dim}` && finite(logvar)
    && error?.dtype === '<f4' && error.shape.join() === `${points}` && finite(error)
    && (factorNames.length ? factors?.dtype === '<f4' && factors.shape.join() === `${points},${factorNames.length}` && finite(factors) : !factors);
  if (!good) {
    const found = Object.entries(arrays).map(([k, v]) => `${k} ${v.dtype} [${v.shape}]`).join(', ') || 'no arrays';
    return { problem: `${label}${EXTRA_FILE}: expected thumbnails uint8 [${points}, h, w(, 3)], z_logvar float32 [${points}, ${dim}], recon_error float32 [${points}]${factorNames.length ? `, factors float32 [${points}, ${factorNames.length}]` : ''}, all finite; found ${found}` };
  }
  return { arrays };
}

/** An onnxruntime-web session of one of the bundle's ONNX files, or a BundleError that says why not. */
export async function createSession(ort, bytes, role, provider, label) {
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: [provider], graphOptimizationLevel: 'all' });
  } catch (error) {
    throw new BundleError(`${label}${role}.onnx: onnxruntime-web cannot load it (${String(error.message || error).split('\n')[0]}); expected the ONNX ${role} of a latent-atlas bundle`);
  }
}

function checkNames(session, role, names, label) {
  const have = [...session.inputNames, ...session.outputNames];
  const absent = names.filter(name => !have.includes(name));
  if (absent.length) {
    throw new BundleError(`${label}${role}.onnx: has inputs/outputs ${have.join(', ')}, but bundle.json names ${names.join(', ')}; not this bundle's ${role}`);
  }
}

/** The two ONNX sessions of a bundle, checked against its manifest. */
export class Model {
  /** `decoder`: a promise of a decoder session already being created (from the same bytes), if any.
   * `encoderLater`: return once the decoder is checked, and create and check the encoder in the background
   * (`encoderReady`); a page's first load paints its first image that much sooner. Otherwise the model is
   * returned only when both sessions passed their checks, so a broken bundle never replaces a good one. */
  static async create(ort, bundle, provider, label, { decoder = null, encoderLater = false } = {}) {
    const model = new Model(ort, bundle, provider);
    try {
      model.sessions.decoder = await (decoder ?? createSession(ort, bundle.files['decoder.onnx'], 'decoder', provider, label));
      await model.checkDecoder(label);
    } catch (error) {
      await model.release();
      throw error;
    }
    model.encoderReady = model.openEncoder(bundle.files['encoder.onnx'], label);
    if (encoderLater) {
      model.encoderReady.catch(() => {});  // the caller awaits it and reports the error
    } else {
      try {
        await model.encoderReady;
      } catch (error) {
        await model.release();
        throw error;
      }
    }
    return model;
  }

  constructor(ort, bundle, provider) {
    this.ort = ort;
    this.manifest = bundle.manifest;
    this.atlas = bundle.atlas;
    this.sessions = {};
    this.provider = provider;
    this.dim = bundle.manifest.latent_dim;
    this.imageShape = bundle.manifest.image_shape ?? SEED_SHAPE;  // [C, H, W]; the schema checked it
    this.pixels = pixelCount(this.imageShape);
    this.classNames = bundle.manifest.dataset.class_names ?? [];  // empty or absent: unlabelled
    this.factorNames = bundle.manifest.dataset.factor_names ?? [];
    const onnx = bundle.manifest.onnx || {};
    this.decoderInput = Object.keys(onnx.decoder?.inputs || { z: 0 })[0];
    this.decoderOutput = Object.keys(onnx.decoder?.outputs || { image: 0 })[0];
    this.encoderInput = Object.keys(onnx.encoder?.inputs || { image: 0 })[0];
    this.encoderOutputs = Object.keys(onnx.encoder?.outputs || { z_mean: 0, z_logvar: 0 });
  }

  /** Waits for the bundle's atlas_extra.npz ({arrays} or {problem}) and keeps it with the atlas. */
  async attachExtra() {
    this.atlas.extra = await this.atlas.extraReady;
    return this.atlas.extra;
  }

  async openEncoder(bytes, label) {
    this.sessions.encoder = await createSession(this.ort, bytes, 'encoder', this.provider, label);
    checkNames(this.sessions.encoder, 'encoder', [this.encoderInput, ...this.encoderOutputs], label);
    await this.checkSize(label, async () => {
      const { mean } = await this.encode(new Float32Array(this.pixels));
      if (mean.length !== this.dim) throw new Error(`encoder gives ${mean.length} latent values`);
    });
  }

  async checkDecoder(label) {
    checkNames(this.sessions.decoder, 'decoder', [this.decoderInput, this.decoderOutput], label);
    await this.checkSize(label, async () => {
      const image = await this.decode(new Float32Array(this.dim));
      if (image.length !== this.pixels) throw new Error(`decoded ${image.length} values, expected ${this.imageShape.join('x')}`);
    });
  }

  async checkSize(label, probe) {
    try {
      await probe();
    } catch (error) {
      throw new BundleError(`${label}decoder.onnx and encoder.onnx do not take latent size ${this.dim} from bundle.json (${String(error.message || error).split('\n')[0]}); expected decoder z [N, ${this.dim}] -> image [N, ${this.imageShape.join(', ')}]`);
    }
  }

  /** Float32Array [N * dim] -> Float32Array [N * C * H * W] of pixel values in [0, 1]. */
  async decode(z) {
    const count = z.length / this.dim;
    const feeds = { [this.decoderInput]: new this.ort.Tensor('float32', z, [count, this.dim]) };
    const result = await this.sessions.decoder.run(feeds);
    const output = result[this.decoderOutput];
    const data = output.location && output.location !== 'cpu' ? await output.getData() : output.data;
    return data;
  }

  /** Float32Array [N * C * H * W] -> {mean, logvar} as Float32Array [N * dim]. */
  async encode(images) {
    if (!this.sessions.encoder) await this.encoderReady;  // (set before its own check's encode)
    const count = images.length / this.pixels;
    const feeds = { [this.encoderInput]: new this.ort.Tensor('float32', images, [count, ...this.imageShape]) };
    const result = await this.sessions.encoder.run(feeds);
    return { mean: result[this.encoderOutputs[0]].data, logvar: result[this.encoderOutputs[1]].data };
  }

  async release() {
    await this.encoderReady?.catch(() => {});  // an encoder still being created is released with the rest
    await Promise.all(Object.values(this.sessions).map(s => s.release()));
  }
}
