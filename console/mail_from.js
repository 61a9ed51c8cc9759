// The domain's custom MAIL FROM domain: set and clear. Its MX record joins the records table.

import { ApiError, api } from './api.js';
import { act, announce, errorSlot, field, form, h, section, status } from './dom.js';
import { canWrite } from './session.js';

export function mailFromSection(page) {
  const path = `${page.path}/mailFromDomain`;
  const current = h('div', {}, h('p', {}, 'Loading…'));
  const writable = canWrite(page.session);
  const children = [
    h('p', {}, 'A subdomain that receives bounces, so that SPF aligns with your domain. It can be set once ownership is ACTIVE.'),
    current,
  ];
  let clear = null;
  let clearSlot = null;
  const name = field('MAIL FROM domain', { name: 'mailFromDomain', autocomplete: 'off', spellcheck: 'false', required: true },
    `A subdomain of ${page.domain.domainName}, e.g. bounce.${page.domain.domainName}.`);

  async function load() {
    let mailFrom = null;
    try {
      mailFrom = await api('GET', path, { signal: page.signal });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    current.replaceChildren(mailFrom
      ? h('p', {}, 'Set to ', h('code', {}, mailFrom.mailFrom.domain), ': its MX record (priority ',
        String(mailFrom.priority), ') is ', status(mailFrom.status), '.')
      : h('p', {}, 'Not set: mail goes out with the sender address as its envelope sender.'));
    if (clear) clear.hidden = !mailFrom;
    if (mailFrom && !name.input.value) name.input.value = mailFrom.mailFrom.domain;
  }

  async function changed(message) {
    await Promise.all([load(), page.refreshRecords()]);
    announce(message);
  }

  if (writable) {
    children.push(form('Set the MAIL FROM domain', [name.field], 'Set MAIL FROM', async () => {
      const set = await api('PUT', path, { json: { mailFrom: { domain: name.input.value.trim() } }, signal: page.signal });
      await changed(`MAIL FROM domain set to ${set.mailFrom.domain}; publish its MX record.`);
    }, [name.input]));
    clear = h('button', { type: 'button', class: 'danger', hidden: true }, 'Clear MAIL FROM');
    clearSlot = errorSlot(clear);
    clear.addEventListener('click', () => act(clear, clearSlot, async () => {
      await api('DELETE', path, { signal: page.signal });
      name.input.value = '';
      await changed('MAIL FROM domain cleared.');
      name.input.focus();
    }));
    children.push(h('div', { class: 'actions' }, clear), clearSlot);
  }
  load().catch((err) => {
    if (err?.name !== 'AbortError') current.replaceChildren(h('p', { class: 'error' }, err.message));
  });
  return section('MAIL FROM domain', children);
}
