// One domain's page: its records (live), trusted senders, MAIL FROM domain and self-check.

import { api, envPath } from './api.js';
import { h } from './dom.js';
import { mailFromSection } from './mail_from.js';
import { recordsSection } from './records.js';
import { selfCheckSection } from './self_check.js';
import { sendersSection } from './senders.js';

export async function domainView(ctx, environmentId, domainId) {
  const path = envPath(environmentId, `/emailDomains/${encodeURIComponent(domainId)}`);
  const [environment, domain] = await Promise.all([
    api('GET', envPath(environmentId), { signal: ctx.signal }),
    api('GET', path, { signal: ctx.signal }),
  ]);
  const page = { ...ctx, path, domain };
  const records = recordsSection(page);
  page.refreshRecords = records.refresh;
  const trail = [
    ['Environments', '#/environments'],
    [environment.name, `#/environments/${environmentId}`],
    [domain.domainName, `#/environments/${environmentId}/domains/${domainId}`],
  ];
  ctx.show(domain.domainName, trail, [
    h('p', {}, 'Publish these records at your DNS provider; each status turns ACTIVE once trustmail finds it.'),
    records.element,
    sendersSection(page),
    mailFromSection(page),
    selfCheckSection(page),
  ]);
  records.watch();
}
