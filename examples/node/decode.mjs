#!/usr/bin/env node
// Decodes one latent point with a Latent Atlas decoder.onnx in onnxruntime-node and writes a grey PNG.
//
//   node decode.mjs [DECODER_ONNX] [OUT_PNG] [--z=0.5,-1] [--scale=4]
//
// Defaults: the bundled MNIST model, digit.png, the origin of the latent space, scale 1.
// Needs nothing but onnxruntime-node: the PNG is written with Node's own zlib.
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

const METADATA_PREFIX = 'latent_atlas.'; // runtime/bundle.py: METADATA_PREFIX
const ONNX_METADATA_PROPS = 14; // ModelProto.metadata_props, a repeated StringStringEntryProto {key = 1, value = 2}
const DEFAULT_DECODER = fileURLToPath(new URL('../../runtime/models/mnist/decoder.onnx', import.meta.url));

// onnxruntime-node does not expose an ONNX file's metadata_props, so they are read from the protobuf
// directly: a scan of the top-level fields is enough, no protobuf library needed.
function* protobufFields(bytes) {
  let pos = 0;
  const varint = () => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      if (pos >= bytes.length) throw new Error('not an ONNX model (truncated protobuf)');
      const byte = bytes[pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === 0) yield [field, varint()];
    else if (wireType === 2) {
      const length = varint();
      yield [field, bytes.subarray(pos, pos + length)];
      pos += length;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else throw new Error(`not an ONNX model (protobuf wire type ${wireType})`);
  }
}

/** The model's "latent_atlas.*" metadata_props, JSON-decoded: {latent_dim: 2, role: "decoder", ...}. */
export function latentAtlasMetadata(onnxBytes) {
  const text = new TextDecoder();
  const metadata = {};
  for (const [field, entry] of protobufFields(onnxBytes)) {
    if (field !== ONNX_METADATA_PROPS) continue;
    const kv = Object.fromEntries([...protobufFields(entry)].map(([f, v]) => [f, text.decode(v)]));
    if (kv[1]?.startsWith(METADATA_PREFIX)) metadata[kv[1].slice(METADATA_PREFIX.length)] = JSON.parse(kv[2]);
  }
  return metadata;
}

// PNG's CRC-32 (zlib.crc32 would do, but only from Node 20.15 on).
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n >>> 0;
});
const crc32 = (bytes) => (bytes.reduce((c, b) => CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8), 0xffffffff) ^ 0xffffffff) >>> 0;

/** A greyscale 8-bit PNG of `pixels` (Uint8Array, row-major, width x height). */
export function encodePng(pixels, width, height) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const frame = Buffer.alloc(body.length + 8);
    frame.writeUInt32BE(data.length, 0);
    body.copy(frame, 4);
    frame.writeUInt32BE(crc32(body), body.length + 4);
    return frame;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // bit depth 8, colour type 0 (grey), deflate, no filter, no interlace
  const rows = Buffer.alloc((width + 1) * height); // each row: filter type 0, then its pixels
  for (let y = 0; y < height; y++) rows.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

async function main(argv) {
  const options = Object.fromEntries(argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
  const [decoderPath = DEFAULT_DECODER, outPath = 'digit.png'] = argv.filter((a) => !a.startsWith('--'));
  const bytes = readFileSync(decoderPath);
  const metadata = latentAtlasMetadata(bytes);
  if (metadata.role !== undefined && metadata.role !== 'decoder') {
    throw new Error(`${decoderPath}: a latent-atlas ${metadata.role}, expected its decoder.onnx`);
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const [batchDim, latentDimFromShape] = session.inputMetadata[0].shape;
  const latentDim = metadata.latent_dim ?? latentDimFromShape;
  if (!Number.isInteger(latentDim)) throw new Error(`${decoderPath}: cannot tell the latent size (no latent_atlas.latent_dim metadata, input shape ${session.inputMetadata[0].shape})`);
  // A static-batch export (latent-atlas export --static-batch N) only runs at batch N: pad with zeros.
  const batch = metadata.static_batch ?? (Number.isInteger(batchDim) ? batchDim : 1);

  const z = (options.z ?? Array(latentDim).fill(0).join(',')).split(',').map(Number);
  if (z.length !== latentDim || !z.every(Number.isFinite)) {
    throw new Error(`--z: expected ${latentDim} comma-separated numbers, got ${JSON.stringify(options.z)}`);
  }
  const scale = Number(options.scale ?? 1);
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale: expected a positive integer, got ${options.scale}`);

  const input = new Float32Array(batch * latentDim);
  input.set(z);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, [batch, latentDim]) };
  const output = (await session.run(feeds))[session.outputNames[0]];
  const [, , height, width] = output.dims;
  const probabilities = output.data.subarray(0, height * width); // the first image of the batch

  // The same quantisation as the Python runtime's images.to_uint8: clip to [0, 1], round half up.
  const pixels = new Uint8Array(height * width * scale * scale);
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      const p = Math.min(1, Math.max(0, probabilities[Math.floor(y / scale) * width + Math.floor(x / scale)]));
      pixels[y * width * scale + x] = Math.floor(p * 255 + 0.5);
    }
  }
  writeFileSync(outPath, encodePng(pixels, width * scale, height * scale));
  console.log(`${outPath}: z = [${z.join(', ')}] decoded by ${metadata.name ?? decoderPath} ` +
    `(latent_dim ${latentDim}, batch ${batch}, onnxruntime-node ${ort.env.versions.common})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`error: ${error.message}`);
    process.exit(2);
  });
}
