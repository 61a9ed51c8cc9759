// The self-check: DKIM, SPF and DMARC as a receiver would judge the domain's mail, per region,
// and whether each trusted sender's mail aligns. Results are the API's words (pass, fail, …).

import { api } from './api.js';
import { act, announce, errorSlot, fill, h, section, status, table, verdict, when } from './dom.js';

const HEADERS = ['Mechanism', 'Result', 'What it means'];
const yesNo = (b) => (b ? 'yes' : 'no');

export function selfCheckSection(page) {
  const run = h('button', { type: 'button' }, 'Run self-check');
  const slot = errorSlot(run);
  const result = h('div', {});
  run.addEventListener('click', () => act(run, slot, async () => {
    const report = await api('POST', `${page.path}/selfCheck`, { signal: page.signal });
    fill(result, render(report));
    const failed = report.regions.some((r) => r.dkim.result !== 'pass' || r.dmarc.result !== 'pass'
      || r.spf.some((s) => s.result !== 'pass'));
    announce(`Self-check done: ${failed ? 'something does not pass' : 'everything passes'}.`);
  }));
  return section('Self-check',
    h('p', {}, 'Signs a test message with each region\u2019s key and judges it as a receiver would. Nothing is sent.'),
    h('div', { class: 'actions' }, run), slot, result);
}

function render(report) {
  return [
    h('p', {}, 'Checked ', when(report.checkedAt), '.'),
    report.regions.map((region) => table(`Region ${region.name} (selector ${region.selector})`, HEADERS, [
      ['DKIM', verdict(region.dkim.result), region.dkim.message],
      ...(region.spf.length
        ? region.spf.map((s) => [`SPF from ${s.ip}`, verdict(s.result), s.message])
        : [['SPF', verdict('none'), region.spfNote ?? 'Not evaluated.']]),
      ['DMARC', verdict(region.dmarc.result),
        `${region.dmarc.message} Policy ${region.dmarc.policy}; DKIM aligned: ${yesNo(region.dmarc.dkimAligned)}; `
        + `SPF aligned: ${yesNo(region.dmarc.spfAligned)}.`],
    ])),
    report.trustedEmails.length
      ? table('Trusted senders', ['Address', 'Status', 'Alignment', 'Notes'], report.trustedEmails.map((t) => [
        t.emailAddress, status(t.status),
        t.regions.map((r) => h('div', {}, `${r.name}: DKIM aligned ${yesNo(r.dkimAligned)}, SPF aligned ${yesNo(r.spfAligned)}`)),
        t.messages.length ? t.messages.map((m) => h('div', {}, m)) : '—',
      ]))
      : null,
  ];
}
