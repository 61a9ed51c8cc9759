// The console's entry: a hash router (#/environments/…), the page frame and the session.
// Each page gets a context whose signal aborts when the reader leaves it (long polls stop).

import { activitiesView } from './activities.js';
import { fill, h, showError } from './dom.js';
import { domainView } from './domains.js';
import { environmentView, environmentsView } from './environments.js';
import { end, isOrganizationAdmin, session } from './session.js';
import { signInView } from './signin.js';

const ROUTES = [
  [/^#\/environments$/, environmentsView],
  [/^#\/environments\/([^/]+)$/, environmentView],
  [/^#\/environments\/([^/]+)\/activities$/, activitiesView],
  [/^#\/environments\/([^/]+)\/domains\/([^/]+)$/, domainView],
];

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
let leave = null;
let endedNotice = null;

/** The first page after sign-in: organization administrators see every environment. */
function home() {
  const current = session();
  const target = isOrganizationAdmin(current) ? '#/environments' : `#/environments/${current.environmentId}`;
  if (location.hash === target) render(); else location.hash = target;
}

/** Puts a page on screen: its title, its breadcrumbs (label, href pairs) and its content. */
function show(title, trail, children) {
  document.title = `${title} · trustmail`;
  const heading = h('h1', { tabindex: '-1' }, title);
  fill(main, [heading, children]);
  crumbs.replaceChildren(trail.length ? h('ol', {}, trail.map(([label, href], i) => h('li', {},
    i === trail.length - 1 ? h('span', { 'aria-current': 'page' }, label) : h('a', { href }, label)))) : '');
  // Focus moves to the new page's heading, so keyboard and screen-reader users start there.
  heading.focus();
}

function render() {
  leave?.abort();
  leave = new AbortController();
  const current = session();
  showWho(current);
  const ctx = { session: current, signal: leave.signal, show, home, go: (hash) => { location.hash = hash; } };
  if (!current) {
    const notice = endedNotice;
    endedNotice = null;
    signInView(ctx, notice);
    return;
  }
  for (const [pattern, view] of ROUTES) {
    const match = location.hash.match(pattern);
    if (match) {
      main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
      Promise.resolve(view(ctx, ...match.slice(1).map(decodeURIComponent))).catch((err) => {
        if (err?.name === 'AbortError' || ctx.signal.aborted) return;
        const slot = h('div', { class: 'error', role: 'alert' });
        showError(slot, err);
        show('Something went wrong', [['Environments', '#/environments']], slot);
      });
      return;
    }
  }
  home();
}

function showWho(current) {
  const who = document.getElementById('who');
  who.hidden = !current;
  document.getElementById('who-text').textContent = current ? `Signed in as ${current.role}` : '';
}

function signOut(notice) {
  end();
  endedNotice = notice;
  if (location.hash === '' || location.hash === '#/') render(); else location.hash = '#/';
}

document.getElementById('sign-out').addEventListener('click', () => signOut('You are signed out.'));
window.addEventListener('session-ended', (event) =>
  signOut(`Your session ended: ${event.detail} Sign in again.`));
window.addEventListener('hashchange', render);
render();
