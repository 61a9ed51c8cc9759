// Trusted senders of the domain: add, resend the code, activate with the code, delete.

import { api, embedded } from './api.js';
import { act, announce, errorSlot, field, form, h, section, status, table } from './dom.js';
import { canWrite } from './session.js';

// The media types of POST …/trustedEmails/{id} (README § API).
const ACTIVATE = 'application/vnd.pingidentity.trustedEmail.activate+json';
const SEND_CODE = 'application/vnd.pingidentity.trustedEmail.sendVerificationCode+json';

export function sendersSection(page) {
  const writable = canWrite(page.session);
  const headers = ['Address', 'Status', ...(writable ? ['Actions'] : [])];
  const holder = h('div', {}, h('p', {}, 'Loading the trusted senders…'));
  const base = `${page.path}/trustedEmails`;

  async function load(focusAddress = null) {
    const list = await api('GET', base, { signal: page.signal });
    const senders = embedded(list, 'trustedEmails');
    holder.replaceChildren(senders.length
      ? table(`Trusted senders of ${page.domain.domainName}`, headers, senders.map((s) => cells(s)))
      : h('p', {}, 'No trusted senders yet.'));
    if (focusAddress) holder.querySelector(`[data-address="${CSS.escape(focusAddress)}"]`)?.focus();
  }

  function cells(sender) {
    const address = h('span', { 'data-address': sender.emailAddress, tabindex: '-1' }, sender.emailAddress);
    const result = [address, status(sender.status)];
    if (!writable) return result;
    const path = `${base}/${encodeURIComponent(sender.id)}`;
    const controls = [];
    if (sender.status !== 'ACTIVE') {
      const code = field(`Verification code for ${sender.emailAddress}`,
        { name: 'verificationCode', autocomplete: 'one-time-code', spellcheck: 'false', required: true });
      controls.push(form(`Activate ${sender.emailAddress}`, [code.field], 'Activate', async () => {
        const activated = await api('POST', path,
          { json: { verificationCode: code.input.value.trim() }, type: ACTIVATE, signal: page.signal });
        await load(activated.emailAddress);
        announce(`${activated.emailAddress} is ${activated.status}.`);
      }, [code.input]));
      const resend = h('button', { type: 'button', class: 'secondary', 'aria-label': `Resend the code to ${sender.emailAddress}` },
        'Resend code');
      const resendSlot = errorSlot(resend);
      resend.addEventListener('click', () => act(resend, resendSlot, async () => {
        await api('POST', path, { type: SEND_CODE, signal: page.signal });
        announce(`A new code is on its way to ${sender.emailAddress}.`);
      }));
      controls.push(h('div', {}, resend, resendSlot));
    }
    const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${sender.emailAddress}` }, 'Delete');
    const removeSlot = errorSlot(remove);
    remove.addEventListener('click', () => act(remove, removeSlot, async () => {
      if (!window.confirm(`Delete the trusted sender ${sender.emailAddress}?`)) return;
      await api('DELETE', path, { signal: page.signal });
      await load();
      announce(`${sender.emailAddress} deleted.`);
      holder.closest('section').querySelector('h2').focus();
    }));
    controls.push(h('div', {}, remove, removeSlot));
    result.push(h('div', { class: 'row-actions' }, controls));
    return result;
  }

  const children = [
    h('p', {}, 'Addresses of this domain your application may send from. Without the environment record in DNS, each gets an emailed code.'),
    holder,
  ];
  if (writable) {
    const address = field('Sender address', { name: 'emailAddress', type: 'email', autocomplete: 'off',
      spellcheck: 'false', required: true }, `An address at ${page.domain.domainName}, e.g. noreply@${page.domain.domainName}.`);
    children.push(form('Add a trusted sender', [address.field], 'Add sender', async () => {
      const created = await api('POST', base, { json: { emailAddress: address.input.value.trim() }, signal: page.signal });
      address.input.value = '';
      await load(created.emailAddress);
      announce(created.status === 'ACTIVE' ? `${created.emailAddress} is ACTIVE.`
        : `${created.emailAddress} added: a verification code was mailed to it.`);
    }, [address.input]));
  }
  load().catch((err) => {
    if (err?.name !== 'AbortError') holder.replaceChildren(h('p', { class: 'error' }, err.message));
  });
  return section('Trusted senders', children);
}
