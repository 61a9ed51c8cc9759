// Environments (ORGANIZATION_ADMIN: every one, and a form to create one) and one environment's
// domains with their overall status.

import { api, embedded, envPath } from './api.js';
import { act, announce, errorSlot, field, form, h, row, section, select, status, table, when } from './dom.js';
import { canWrite, isOrganizationAdmin } from './session.js';

const REGIONS = [['NA', 'NA (North America)'], ['CA', 'CA (Canada)'], ['EU', 'EU (Europe)'], ['AP', 'AP (Asia Pacific)']];

export async function environmentsView(ctx) {
  const list = await api('GET', '/v1/environments', { signal: ctx.signal });
  const environments = embedded(list, 'environments');
  const content = [
    table('Environments', ['Name', 'Region', 'ID', 'Created'], environments.map((e) => [
      h('a', { href: `#/environments/${e.id}` }, e.name), e.region, h('code', {}, e.id), when(e.createdAt)])),
  ];
  if (isOrganizationAdmin(ctx.session)) {
    const name = field('Name', { name: 'name', required: true, autocomplete: 'off' });
    const region = select('Region', REGIONS);
    content.push(section('New environment', form('New environment', [name.field, region.field], 'Create environment',
      async () => {
        const created = await api('POST', '/v1/environments',
          { json: { name: name.input.value, region: region.input.value }, signal: ctx.signal });
        announce(`Environment ${created.name} created.`);
        ctx.go(`#/environments/${created.id}`);
      }, [name.input, region.input])));
  }
  ctx.show('Environments', [['Environments', '#/environments']], content);
}

export async function environmentView(ctx, environmentId) {
  const [environment, list] = await Promise.all([
    api('GET', envPath(environmentId), { signal: ctx.signal }),
    api('GET', envPath(environmentId, '/emailDomains'), { signal: ctx.signal }),
  ]);
  const writable = canWrite(ctx.session);
  const headers = ['Domain', 'Status', 'Records ACTIVE', ...(writable ? ['Actions'] : [])];
  const rows = embedded(list, 'emailDomains').map((domain) => domainRow(ctx, environmentId, domain, headers, writable));
  const content = [
    h('p', {}, `Region ${environment.region}. `, h('a', { href: `#/environments/${environmentId}/activities` },
      'Activities in this environment')),
    rows.length ? table('Trusted email domains', headers, rows) : h('p', {}, 'No trusted email domains yet.'),
  ];
  if (writable) {
    const name = field('Domain name', { name: 'domainName', required: true, autocomplete: 'off', spellcheck: 'false' },
      'The domain your application sends from, e.g. auth.shopco.com.');
    content.push(section('Add a domain', form('Add a domain', [name.field], 'Add domain', async () => {
      const created = await api('POST', envPath(environmentId, '/emailDomains'),
        { json: { domainName: name.input.value.trim() }, signal: ctx.signal });
      announce(`Domain ${created.domainName} added.`);
      ctx.go(`#/environments/${environmentId}/domains/${created.id}`);
    }, [name.input])));
  }
  const trail = [['Environments', '#/environments'], [environment.name, `#/environments/${environmentId}`]];
  ctx.show(environment.name, trail, content);
}

/** A domain's row; its status is filled in when its verification answers. */
function domainRow(ctx, environmentId, domain, headers, writable) {
  const overall = h('span', {}, 'Loading…');
  const count = h('span', {}, '…');
  const cells = [h('a', { href: `#/environments/${environmentId}/domains/${domain.id}` }, domain.domainName), overall, count];
  const path = envPath(environmentId, `/emailDomains/${domain.id}`);
  let tr = null;
  if (writable) {
    const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${domain.domainName}` }, 'Delete');
    const slot = errorSlot(remove);
    remove.addEventListener('click', () => act(remove, slot, async () => {
      if (!window.confirm(`Delete ${domain.domainName}, its records and its trusted senders?`)) return;
      await api('DELETE', path, { signal: ctx.signal });
      announce(`Domain ${domain.domainName} deleted.`);
      const next = tr.nextElementSibling?.querySelector('a') ?? tr.previousElementSibling?.querySelector('a');
      tr.remove();
      (next ?? document.querySelector('main h1')).focus();
    }));
    cells.push(h('div', {}, remove, slot));
  }
  tr = row(headers, cells);
  api('GET', `${path}/verification`, { signal: ctx.signal }).then((v) => {
    overall.replaceChildren(status(v.complete ? 'ACTIVE' : 'VERIFICATION_REQUIRED'));
    const active = v.records.filter((r) => r.status === 'ACTIVE').length;
    count.textContent = `${active} of ${v.records.length}`;
  }, (err) => {
    if (err?.name !== 'AbortError') overall.textContent = err.message;
  });
  return tr;
}
