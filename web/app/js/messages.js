// The page's message box and status bar.
const $ = id => document.getElementById(id);

/** Shows `text` in the message box; an empty text hides it. */
export function showMessage(text) {
  const box = $('message');
  box.textContent = text;
  box.hidden = !text;
}

export function showStatus(text) {
  $('status').textContent = text;
}

/** The status bar: the model, its provider (and WASM threads) and the last decode's time. */
export function updateStatus(state) {
  const m = state.model;
  const parts = [m ? `model ${m.manifest.name} (${m.manifest.variant}, ${m.manifest.dataset.name})` : 'no model loaded'];
  if (state.provider) {
    const threads = state.provider === 'wasm' ? `, ${state.numThreads} thread${state.numThreads > 1 ? 's' : ''}` : '';
    parts.push(`provider ${state.provider}${threads}${crossOriginIsolated ? ', cross-origin isolated' : ''}`);
  }
  if (state.lastDecodeMs !== null) parts.push(`last decode ${state.lastDecodeMs.toFixed(2)} ms`);
  showStatus(parts.join(' · '));
}
