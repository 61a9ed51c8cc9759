// Sign-in: the three values the first `trustmail serve` prints, exchanged at the token endpoint
// (OAuth 2.0 client credentials, client_secret_post) for an access token.

import { errorOf } from './api.js';
import { field, form, h } from './dom.js';
import { start } from './session.js';

/** The sign-in page; NOTICE (why the last session ended) is shown above the form. */
export function signInView(ctx, notice) {
  const environment = field('Environment ID', { name: 'environmentId', autocomplete: 'off', required: true,
    spellcheck: 'false' }, 'The environmentId printed by the first trustmail serve (or the environment of your client).');
  const client = field('Client ID', { name: 'clientId', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = field('Client secret', { name: 'clientSecret', type: 'password', autocomplete: 'current-password',
    required: true });
  const signIn = form('Sign in', [environment.field, client.field, secret.field], 'Sign in', async () => {
    const environmentId = environment.input.value.trim();
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: client.input.value.trim(),
      client_secret: secret.input.value,
    });
    const response = await fetch(`/${encodeURIComponent(environmentId)}/as/token`, {
      method: 'POST', body, credentials: 'omit', cache: 'no-store',
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) throw await errorOf(response);
    const grant = await response.json();
    secret.input.value = '';
    start(grant.access_token);
    ctx.home();
  }, [environment.input, client.input, secret.input]);
  ctx.show('Sign in', [], [
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
    h('p', {}, 'Sign in with a client of trustmail: any role. A READ_ONLY client sees no controls that change anything.'),
    signIn,
  ]);
}
