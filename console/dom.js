// Small DOM helpers. Everything from the API goes in as text (textContent, attributes), never
// parsed as HTML, so a domain or activity name cannot inject markup.

/** An element: attributes (on* become listeners; false/null/undefined are left out) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  return fill(el, children, true);
}

/** Puts CHILDREN (nested arrays, nodes, text; null and false left out) in EL, replacing what was there. */
export function fill(el, children, append = false) {
  if (!append) el.replaceChildren();
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let counter = 0;
/** An id unique on the page, for label/for and aria-describedby. */
export const uid = (prefix) => `${prefix}-${++counter}`;

/** Says TEXT through the page's polite live region (cleared first, so a repeat is spoken too). */
export function announce(text) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 60);
}

/** A labelled input: { field (the wrapper), input }. */
export function field(label, attrs = {}, hint = null) {
  const id = uid('field');
  const hintId = hint ? uid('hint') : null;
  const input = h('input', { ...attrs, id, 'aria-describedby': hintId });
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    input);
  return { field: wrap, input };
}

/** A select with a label; OPTIONS are [value, text] pairs. */
export function select(label, options) {
  const id = uid('field');
  const input = h('select', { id, name: id }, options.map(([v, t]) => h('option', { value: v }, t)));
  return { field: h('div', { class: 'field' }, h('label', { for: id }, label), input), input };
}

/**
 * The place for an API error next to the controls that caused it: they point at it with
 * aria-describedby, and it is an alert, so the message is spoken when it appears.
 */
export function errorSlot(...controls) {
  const slot = h('div', { class: 'error', id: uid('error'), role: 'alert' });
  slot.controls = controls;
  for (const control of controls) {
    const described = control.getAttribute('aria-describedby');
    control.setAttribute('aria-describedby', described ? `${described} ${slot.id}` : slot.id);
  }
  return slot;
}

/** Shows ERR (an ApiError: its P1Error message and each detail's) in SLOT. */
export function showError(slot, err) {
  const details = err.details ?? [];
  fill(slot, [
    h('p', {}, err.message || String(err)),
    details.length ? h('ul', {}, details.map((d) => h('li', {}, d))) : null,
  ]);
  for (const control of slot.controls ?? []) {
    if (control.tagName !== 'BUTTON') control.setAttribute('aria-invalid', 'true');
  }
}

export function clearError(slot) {
  slot.replaceChildren();
  for (const control of slot.controls ?? []) control.removeAttribute('aria-invalid');
}

/**
 * Runs FN for a click or submit on BUTTON, once at a time, its error (if any) shown in SLOT.
 * The button stays focusable while busy (aria-disabled), so keyboard users keep their place.
 */
export async function act(button, slot, fn) {
  if (button.getAttribute('aria-disabled') === 'true' || button.dataset.busy) return;
  button.dataset.busy = '1';
  button.setAttribute('aria-busy', 'true');
  if (slot) clearError(slot);
  try {
    await fn();
  } catch (err) {
    if (err?.name === 'AbortError') return;
    if (slot) showError(slot, err); else throw err;
  } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-busy');
  }
}

/** A form whose submit (button or Enter) runs FN through act(). */
export function form(label, children, submitText, fn, slotFor = []) {
  const submit = h('button', { type: 'submit' }, submitText);
  const slot = errorSlot(...slotFor, submit);
  const el = h('form', { 'aria-label': label, novalidate: true, class: 'inline-form' },
    children, h('div', { class: 'actions' }, submit), slot);
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    act(submit, slot, () => fn(el));
  });
  return el;
}

/** A status in the API's own words, as text; the colour and mark only repeat it. */
export function status(value) {
  const known = ['ACTIVE', 'VERIFICATION_REQUIRED', 'SUCCESS'].includes(value) ? value : 'OTHER';
  return h('span', { class: `status status-${known}` }, value);
}

/** A mechanism's result (pass, fail, softfail, none, temperror, …) as its word. */
export function verdict(result) {
  return h('span', { class: `status ${result === 'pass' ? 'status-ACTIVE' : 'status-OTHER'}` }, result);
}

/** A time the API answered, in the reader's locale. */
export function when(iso) {
  if (!iso) return '—';
  return h('time', { datetime: iso }, new Date(iso).toLocaleString());
}

/**
 * A table whose rows (arrays of cells, or rows made with row()) become labelled cards on narrow
 * screens (CSS reads data-label). Explicit roles keep it a table for assistive technology when
 * CSS changes its display.
 */
export function table(caption, headers, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', { role: 'table' },
      h('caption', {}, caption),
      h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' },
        headers.map((t) => h('th', { scope: 'col', role: 'columnheader' }, t)))),
      h('tbody', { role: 'rowgroup' }, rows.map((cells) => (cells instanceof Node ? cells : row(headers, cells))))));
}

/** One table row; CELLS line up with HEADERS. */
export function row(headers, cells) {
  return h('tr', { role: 'row' },
    cells.map((cell, i) => h('td', { role: 'cell', 'data-label': headers[i] }, cell)));
}

/** A button that copies VALUE; WHAT names it for screen readers and the announcement. */
export function copyButton(value, what) {
  const button = h('button', { type: 'button', class: 'copy secondary', 'aria-label': `Copy ${what}` }, 'Copy');
  button.addEventListener('click', async () => {
    const ok = await copy(value);
    button.textContent = ok ? 'Copied' : 'Copy failed';
    announce(ok ? `Copied ${what}.` : `Could not copy ${what}; select it and copy it by hand.`);
    setTimeout(() => { button.textContent = 'Copy'; }, 2000);
  });
  return button;
}

async function copy(value) {
  try {
    await navigator.clipboard.writeText(value);
    return true;
  } catch {
    // No Clipboard API outside secure contexts (plain http on a host name): the old way.
    const area = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
    area.value = value;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/** Resolves after MS milliseconds, or rejects (AbortError) when SIGNAL aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('left the page', 'AbortError'));
    }, { once: true });
  });
}

/** A section with a heading (level 2, focusable from script) and the children; labelled by it. */
export function section(title, ...children) {
  const id = uid('section');
  return h('section', { 'aria-labelledby': id, class: 'panel' }, h('h2', { id, tabindex: '-1' }, title), children);
}
