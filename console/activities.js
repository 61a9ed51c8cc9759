// Activities of an environment: who did what, newest first, a page at a time.

import { api, embedded, envPath } from './api.js';
import { act, errorSlot, h, status, table, when } from './dom.js';

const PAGE = 20;

export async function activitiesView(ctx, environmentId) {
  const environment = await api('GET', envPath(environmentId), { signal: ctx.signal });
  const holder = h('div', {});
  const position = h('p', { role: 'status' });
  const newer = h('button', { type: 'button', class: 'secondary' }, 'Newer');
  const older = h('button', { type: 'button', class: 'secondary' }, 'Older');
  const slot = errorSlot(newer, older);
  let offset = 0;

  async function load(at) {
    const list = await api('GET', envPath(environmentId, `/activities?limit=${PAGE}&offset=${at}`), { signal: ctx.signal });
    const activities = embedded(list, 'activities');
    offset = at;
    holder.replaceChildren(activities.length
      ? table('Activities, newest first', ['When', 'Action', 'Resource', 'By client', 'Result'], activities.map((a) => [
        when(a.recordedAt),
        a.action?.type ?? '',
        (a.resources ?? []).map((r) => h('div', {}, `${r.type} ${r.name ?? r.id}`)),
        h('code', {}, a.actors?.client?.id ?? ''),
        status(a.result?.status ?? ''),
      ]))
      : h('p', {}, 'No activities on this page.'));
    position.textContent = activities.length
      ? `Activities ${at + 1} to ${at + activities.length}${list.count ? ` of ${list.count}` : ''}.` : '';
    // Hidden controls would be skipped by the keyboard; disabled ones say there is no page there.
    newer.disabled = at === 0;
    older.disabled = !list._links?.next;
  }

  // A button that turns disabled (the first or last page) hands the focus to the other one.
  const page = (button, other, at) => act(button, slot, async () => {
    await load(at);
    if (button.disabled && !other.disabled) other.focus();
  });
  newer.addEventListener('click', () => page(newer, older, Math.max(0, offset - PAGE)));
  older.addEventListener('click', () => page(older, newer, offset + PAGE));
  await load(0);
  ctx.show(`Activities in ${environment.name}`, [
    ['Environments', '#/environments'],
    [environment.name, `#/environments/${environmentId}`],
    ['Activities', `#/environments/${environmentId}/activities`],
  ], [holder, h('nav', { 'aria-label': 'Activity pages', class: 'actions' }, newer, older), position, slot]);
}
