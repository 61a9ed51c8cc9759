// The domain's records: one table with a copy button per name and value, each status in the
// API's words, the diagnosis of each record not yet right, zone-file downloads, "Check now",
// and status that updates by itself while the page is open.

import { ApiError, api } from './api.js';
import { act, announce, clearError, copyButton, errorSlot, fill, h, section, sleep, status, table, when } from './dom.js';

const HEADERS = ['Record', 'Type', 'Name', 'Value', 'Status', 'Diagnosis'];
const FORMATS = [
  ['bind', 'BIND zone file', 'zone'],
  ['route53', 'Route 53 change batch', 'route53.json'],
  ['cloudflare', 'Cloudflare records', 'cloudflare.json'],
  ['terraform', 'Terraform', 'tf'],
];
// Long polls are held this long; a change short of every record ACTIVE shows within it.
const WAIT_S = 20;
// Once every record is ACTIVE, the last check is read again this often.
const COMPLETE_POLL_MS = 30000;
const RETRY_MS = 10000;

/** { element, refresh(), watch() } for the domain page PAGE. */
export function recordsSection(page) {
  const summary = h('p', { class: 'summary' }, 'Loading the records…');
  const holder = h('div', {});
  const check = h('button', { type: 'button' }, 'Check now');
  const countdown = h('span', { class: 'countdown' });
  const checkSlot = errorSlot(check);
  const watchSlot = h('div', { class: 'error', role: 'alert' });
  let shown = null;

  function render(verification) {
    const records = verification.records;
    const active = records.filter((r) => r.status === 'ACTIVE').length;
    const text = `${active} of ${records.length} records ACTIVE`;
    if (shown !== null && shown.text !== text) announce(`${page.domain.domainName}: ${text}.`);
    summary.replaceChildren('Overall: ', status(verification.complete ? 'ACTIVE' : 'VERIFICATION_REQUIRED'),
      ` ${text}. This page updates by itself.`);
    const keys = records.map(key).join(' ');
    if (shown?.keys === keys) {
      // The same records: update in place, so a focused copy button keeps its focus.
      records.forEach((r, i) => {
        const cells = holder.querySelectorAll('tbody tr')[i].children;
        cells[4].replaceChildren(status(r.status));
        fill(cells[5], diagnosis(r));
      });
    } else {
      holder.replaceChildren(table(`DNS records for ${page.domain.domainName}`, HEADERS, records.map(cells)));
    }
    shown = { text, keys };
  }

  async function refresh(query = '') {
    const verification = await api('GET', `${page.path}/verification${query}`, { signal: page.signal });
    render(verification);
    return verification;
  }

  // A long poll rather than polling: GET …/verification?waitFor=ACTIVE re-checks DNS on the
  // server's cadence and answers as soon as every record is ACTIVE, so the page sees the change
  // within one check, while a plain GET only shows the last (scheduled) check. Each poll is held
  // at most WAIT_S, so records that turn ACTIVE one by one show within that too.
  async function watch() {
    let complete = null; // unknown until the first, plain, read
    while (!page.signal.aborted) {
      try {
        if (complete) await sleep(COMPLETE_POLL_MS, page.signal);
        const waiting = complete === false;
        const verification = await refresh(waiting ? `?waitFor=ACTIVE&timeoutSeconds=${WAIT_S}` : '');
        complete = verification.complete;
        watchSlot.replaceChildren();
      } catch (err) {
        if (err?.name === 'AbortError' || page.signal.aborted) return;
        watchSlot.replaceChildren(h('p', {}, `Live updates paused: ${err.message}`));
        if (err instanceof ApiError && err.status === 404) return;
        try { await sleep(RETRY_MS, page.signal); } catch { return; }
      }
    }
  }

  check.addEventListener('click', () => act(check, checkSlot, async () => {
    try {
      render(await api('POST', `${page.path}/verification`, { signal: page.signal }));
      announce('Checked now.');
    } catch (err) {
      if (err instanceof ApiError && err.status === 429 && err.retryAfter) holdOff(check, countdown, err.retryAfter, checkSlot);
      throw err;
    }
  }));

  const downloads = FORMATS.map(([format, label, extension]) =>
    h('button', { type: 'button', class: 'secondary', 'data-format': format }, label));
  const downloadSlot = errorSlot(...downloads);
  downloads.forEach((button, i) => button.addEventListener('click', () =>
    act(button, downloadSlot, () => download(page, FORMATS[i][0], FORMATS[i][2]))));

  const element = section('DNS records', summary, watchSlot,
    h('div', { class: 'actions' }, check, countdown), checkSlot,
    h('div', { role: 'group', 'aria-label': 'Download the records', class: 'downloads' },
      h('span', { class: 'group-label' }, 'Download:'), downloads),
    downloadSlot, holder);
  return { element, refresh, watch };
}

const key = (r) => `${r.record}/${r.region ?? ''}/${r.type}/${r.name}/${r.expected}`;

function cells(r) {
  const what = `${r.record}${r.region ? ` ${r.region}` : ''} record`;
  return [
    r.region ? `${r.record} (${r.region})` : r.record,
    r.type,
    h('div', { class: 'copyable' }, h('code', {}, r.name), copyButton(r.name, `name of the ${what}`)),
    h('div', { class: 'copyable' }, h('code', {}, r.expected), copyButton(r.expected, `value of the ${what}`)),
    status(r.status),
    diagnosis(r),
  ];
}

/** Why a record is not right yet (the API's sentence and reason code), or when it was checked. */
function diagnosis(r) {
  if (r.reason === 'OK') return ['Found. Checked ', when(r.lastCheckedAt), '.'];
  return [
    h('span', { class: 'message' }, r.message),
    ' ', h('span', { class: 'reason' }, `(${r.reason})`),
    r.suggested ? h('div', { class: 'copyable' }, 'Suggested: ', h('code', {}, r.suggested),
      copyButton(r.suggested, 'suggested SPF record')) : null,
  ];
}

/** Disables BUTTON for SECONDS (a 429's Retry-After), counting down in NOTE; then clears SLOT. */
function holdOff(button, note, seconds, slot) {
  let left = seconds;
  button.setAttribute('aria-disabled', 'true');
  const tick = () => {
    if (left <= 0) {
      clearInterval(timer);
      button.removeAttribute('aria-disabled');
      note.textContent = '';
      clearError(slot);
      return;
    }
    note.textContent = `You can check again in ${left} s.`;
    left -= 1;
  };
  const timer = setInterval(tick, 1000);
  tick();
}

/** Fetches the zone file in FORMAT with the token and saves it (a link could not send the token). */
async function download(page, format, extension) {
  const response = await api('GET', `${page.path}/zoneFile?format=${format}`, { raw: true, signal: page.signal });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const name = `${page.domain.domainName}.${extension}`;
  const link = h('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  announce(`Downloaded ${name}.`);
}
