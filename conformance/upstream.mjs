#!/usr/bin/env node
// An independent upstream OpenID Provider for Portcullis' federation tests: panva's
// `oidc-provider` (OpenID Certified), at the exact version pinned in package.json.
//
// Run by `cargo test -p portcullis-server --test sso`, which starts one per test, reads the
// first stdout line, and signs in through it with plain HTTP. By hand:
//
//   node conformance/upstream.mjs --port=0 --client-id=portcullis --client-secret=s3cret \
//     --redirect-uri='http://127.0.0.1:8080/v1/auth/sso/*'
//
// Every option can also come from the environment: UPSTREAM_PORT, UPSTREAM_CLIENT_ID,
// UPSTREAM_CLIENT_SECRET, UPSTREAM_REDIRECT_URI, UPSTREAM_NO_EMAIL=1, UPSTREAM_CONFORM=1.
//
//   --port           port on 127.0.0.1 (0 = any free one)
//   --client-id      the one registered client (confidential, client_secret_basic)
//   --client-secret
//   --redirect-uri   its redirect URI; a trailing `*` makes it a prefix (one upstream serves
//                    every provider id Portcullis gives it, e.g. `org_<uuid>`)
//   --no-email       a provider that never releases the `email` claim
//   --conform        claims requested by scope (`email`, `email_verified`, `name`) are
//                    released only at the userinfo endpoint, never in the ID token, as
//                    OpenID Connect Core §5.4 has it when an access token is issued
//                    (without it: Google-like, they are in the ID token too)
//
// The first stdout line is `{"issuer":"http://127.0.0.1:PORT","port":PORT}`.
//
// Accounts: the `login_hint` names the account. `alice@example.com` has a verified email,
// `bob@example.com` an unverified one; any other address is verified unless its local part
// starts with `unverified`. The subject is stable per address. Login and consent finish by
// themselves (custom interactions), so a test drives the whole flow with plain HTTP.

import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'no-email': { type: 'boolean' },
    conform: { type: 'boolean' },
  },
});

const port = Number(args.port ?? process.env.UPSTREAM_PORT ?? 0);
const clientId = args['client-id'] ?? process.env.UPSTREAM_CLIENT_ID ?? 'portcullis';
const clientSecret = args['client-secret'] ?? process.env.UPSTREAM_CLIENT_SECRET;
const redirectUri = args['redirect-uri'] ?? process.env.UPSTREAM_REDIRECT_URI;
const noEmail = Boolean(args['no-email'] || process.env.UPSTREAM_NO_EMAIL === '1');
const conform = Boolean(args.conform || process.env.UPSTREAM_CONFORM === '1');

if (!clientSecret || !redirectUri) {
  console.error('upstream.mjs: --client-secret and --redirect-uri are required');
  process.exit(2);
}

const prefix = redirectUri.endsWith('*') ? redirectUri.slice(0, -1) : null;

function account(id) {
  const email = String(id).toLowerCase();
  const local = email.split('@')[0];
  const verified = !(local === 'bob' || local.startsWith('unverified'));
  return {
    accountId: email,
    async claims() {
      const claims = { sub: `sub-${email}`, name: local.charAt(0).toUpperCase() + local.slice(1) };
      if (!noEmail) {
        claims.email = email;
        claims.email_verified = verified;
      }
      return claims;
    },
  };
}

// The harness may stop reading our stdout after the first line; never die of that.
process.stdout.on('error', () => {});

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const bound = server.address().port;
const issuer = `http://127.0.0.1:${bound}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [prefix ? `${prefix}placeholder` : redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['upstream-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Google-like by default: scope-requested claims go into the ID token, not only to
  // userinfo. With --conform, only to userinfo (Core §5.4).
  conformIdTokenClaims: conform,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, id) => account(id),
});

if (prefix) {
  const exact = provider.Client.prototype.redirectUriAllowed;
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    return (typeof value === 'string' && value.startsWith(prefix)) || exact.call(this, value);
  };
}

// Login and consent, finished at once for the account the login_hint names.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session } = details;
    if (prompt.name === 'login') {
      const accountId = String(params.login_hint || 'alice@example.com').toLowerCase();
      await provider.interactionFinished(req, res, { login: { accountId } }, {
        mergeWithLastSubmission: false,
      });
      return;
    }
    if (prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, {
        mergeWithLastSubmission: true,
      });
      return;
    }
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`unexpected prompt ${prompt.name}`);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.message));
  }
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
  } else {
    callback(req, res);
  }
});

process.stdout.write(`${JSON.stringify({ issuer, port: bound })}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
// The test harness closes stdin when it is done with us.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
