#!/usr/bin/env node
// Independent OpenID Connect conformance check of a running Portcullis.
//
// The relying party here is not ours: it is panva's `openid-client` (an OpenID Certified
// relying-party library) and `jose`, at the exact versions pinned in package.json and
// package-lock.json. Whatever they refuse, a real relying party would refuse too.
//
// Run by `cargo test -p portcullis --test conformance`, which starts `portcullis serve`,
// signs a user up, registers the clients and passes them in. By hand:
//
//   CONFORMANCE_ISSUER=http://127.0.0.1:8080 CONFORMANCE_SESSION=… \
//   CONFORMANCE_CLIENT_ID=pcc_… CONFORMANCE_CLIENT_SECRET=pcs_… \
//   CONFORMANCE_PUBLIC_CLIENT_ID=pcc_… node conformance/oidc.mjs
//
// Every variable can also be given as an argument: --issuer=…, --session=…, --client-id=…
// (the name without CONFORMANCE_, lower case, `_` as `-`).
//
//   CONFORMANCE_ISSUER                    the issuer URL (the server's public URL)
//   CONFORMANCE_SESSION                   a signed-in user's session token (cookie value)
//   CONFORMANCE_COOKIE_NAME               default portcullis_session
//   CONFORMANCE_CLIENT_ID / _SECRET       a confidential client: client_secret_basic, grants
//                                         authorization_code, refresh_token, client_credentials
//   CONFORMANCE_CLIENT_ALG                its signing_alg (default EdDSA)
//   CONFORMANCE_PUBLIC_CLIENT_ID          a public client (auth method none, PKCE)
//   CONFORMANCE_PUBLIC_CLIENT_ALG         its signing_alg (default EdDSA)
//   CONFORMANCE_REDIRECT_URI              registered for both (default http://127.0.0.1/cb)
//   CONFORMANCE_POST_LOGOUT_REDIRECT_URI  registered for the confidential client
//                                         (default http://127.0.0.1/logged-out)
//   CONFORMANCE_ES256_CLIENT_ID / _SECRET optional confidential clients whose signing_alg is
//   CONFORMANCE_RS256_CLIENT_ID / _SECRET ES256 / RS256: their ID tokens are validated too
//
// Prints one line per check and ends with exactly `N passed, M failed`; exits 0 only when
// every check passed (1 on a failed check, 2 on bad usage).

import * as client from 'openid-client';
import * as jose from 'jose';

// ---- configuration ---------------------------------------------------------------------------

function settings() {
  const env = { ...process.env };
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z0-9-]+)=(.*)$/s.exec(arg);
    if (!m) usage(`unrecognised argument ${JSON.stringify(arg)}`);
    env[`CONFORMANCE_${m[1].toUpperCase().replaceAll('-', '_')}`] = m[2];
  }
  const get = (name, fallback) => {
    const v = env[`CONFORMANCE_${name}`];
    if (v !== undefined && v !== '') return v;
    if (fallback === undefined) usage(`CONFORMANCE_${name} is required`);
    return fallback;
  };
  const optionalClient = (alg) => {
    const id = env[`CONFORMANCE_${alg}_CLIENT_ID`];
    if (!id) return null;
    return { label: `${alg} client`, id, secret: get(`${alg}_CLIENT_SECRET`), alg };
  };
  const issuer = get('ISSUER');
  try {
    new URL(issuer);
  } catch {
    usage(`CONFORMANCE_ISSUER ${JSON.stringify(issuer)} is not a URL`);
  }
  return {
    issuer,
    session: get('SESSION'),
    cookieName: get('COOKIE_NAME', 'portcullis_session'),
    redirectUri: get('REDIRECT_URI', 'http://127.0.0.1/cb'),
    postLogoutRedirectUri: get('POST_LOGOUT_REDIRECT_URI', 'http://127.0.0.1/logged-out'),
    confidential: {
      label: 'confidential client',
      id: get('CLIENT_ID'),
      secret: get('CLIENT_SECRET'),
      alg: get('CLIENT_ALG', 'EdDSA'),
    },
    public: { label: 'public client', id: get('PUBLIC_CLIENT_ID'), secret: null, alg: get('PUBLIC_CLIENT_ALG', 'EdDSA') },
    extra: [optionalClient('ES256'), optionalClient('RS256')].filter(Boolean),
  };
}

function usage(message) {
  console.error(`conformance: ${message}\nusage: see the comment at the top of conformance/oidc.mjs`);
  process.exit(2);
}

// ---- reporting -------------------------------------------------------------------------------

let passed = 0;
let failed = 0;

/** Everything an error says: openid-client's code, the server's error and description. */
function describe(err) {
  if (!(err instanceof Error)) return String(err);
  const parts = [`${err.name}: ${err.message}`];
  if (err.code) parts.push(`code=${err.code}`);
  if (err.error) parts.push(`error=${err.error}`);
  if (err.error_description) parts.push(`error_description=${JSON.stringify(err.error_description)}`);
  if (err.status) parts.push(`status=${err.status}`);
  if (err.cause !== undefined) {
    const c = err.cause;
    if (c instanceof Error) parts.push(`cause: ${describe(c)}`);
    else if (c instanceof Response) parts.push(`cause: HTTP ${c.status} ${c.headers.get('content-type') ?? ''}`);
    else {
      try {
        parts.push(`cause: ${JSON.stringify(c)}`);
      } catch {
        parts.push(`cause: ${String(c)}`);
      }
    }
  }
  return parts.join('; ');
}

class SectionAborted extends Error {}

/**
 * A group of checks that build on each other: the first failure ends the group (later
 * checks would only fail for the same reason), and the remaining ones are listed as not run.
 */
async function section(title, body) {
  console.log(`# ${title}`);
  const check = async (name, fn) => {
    try {
      const detail = await fn();
      passed += 1;
      console.log(`ok   ${name}${detail ? ` — ${detail}` : ''}`);
    } catch (err) {
      failed += 1;
      console.log(`FAIL ${name}: ${describe(err)}`);
      throw new SectionAborted();
    }
  };
  try {
    await body(check);
  } catch (err) {
    if (err instanceof SectionAborted) {
      console.log(`     (the rest of "${title}" was not run)`);
    } else {
      failed += 1;
      console.log(`FAIL ${title}: ${describe(err)}`);
    }
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Awaits `promise` and expects it to reject; returns the error. */
async function rejects(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error(`${what} succeeded, but should have been refused`);
}

// ---- the relying party -----------------------------------------------------------------------

const cfg = settings();
const issuerUrl = new URL(cfg.issuer);
const cookie = `${cfg.cookieName}=${cfg.session}`;
const timeout = () => AbortSignal.timeout(15_000);

// The server under test listens on plain-http loopback; openid-client refuses non-https
// endpoints unless told otherwise. `allowInsecureRequests` is that one relaxation, and the
// only one: every other check of the library stays on. `enableNonRepudiationChecks` makes it
// stricter than its default: ID tokens from the token endpoint get their JWS signature
// verified against the JWKS too (by default it relies on TLS, which a plain-http test lacks).
const execute = [client.allowInsecureRequests, client.enableNonRepudiationChecks];

/** The user behind the session, from Portcullis' own API. */
async function me() {
  const r = await fetch(new URL('/v1/me', issuerUrl), { headers: { cookie }, redirect: 'manual', signal: timeout() });
  return { status: r.status, body: r.status === 200 ? await r.json() : await r.text() };
}

/**
 * One configuration per client, each from its own discovery, as independent relying parties
 * would have. The client pins the ID token algorithm it registered, so a token signed with any
 * other algorithm (even one the server supports) is refused.
 */
async function configure(c) {
  const metadata = { id_token_signed_response_alg: c.alg };
  let auth;
  if (c.secret) {
    metadata.client_secret = c.secret;
    metadata.token_endpoint_auth_method = 'client_secret_basic';
    auth = client.ClientSecretBasic(c.secret);
  } else {
    metadata.token_endpoint_auth_method = 'none';
    auth = client.None();
  }
  return client.discovery(issuerUrl, c.id, metadata, auth, { execute });
}

/**
 * The browser's part of the code flow: GET the authorization URL with the session cookie and
 * return the redirect it answers with (a signed-in first-party user is not asked to consent).
 */
async function browse(url) {
  const r = await fetch(url, { headers: { cookie }, redirect: 'manual', signal: timeout() });
  const location = r.headers.get('location');
  if (![302, 303, 307].includes(r.status) || !location) {
    const body = (await r.text()).replace(/\s+/g, ' ').slice(0, 300);
    throw new Error(`the authorization endpoint answered ${r.status} without a redirect: ${body}`);
  }
  return new URL(location, url);
}

/** An authorization request built by openid-client: S256 PKCE, state, nonce. */
async function authorizationRequest(config, scope, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const checks = {
    pkceCodeVerifier: verifier,
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
    idTokenExpected: true,
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...extra,
  });
  return { url, checks };
}

/** Verifies a JWT with jose alone: signature against the JWKS, issuer, audience, algorithm. */
async function joseVerify(jwks, jwt, c, extra = {}) {
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, {
    issuer: cfg.issuer,
    audience: c.id,
    algorithms: [c.alg],
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    ...extra,
  });
  assert(typeof protectedHeader.kid === 'string' && protectedHeader.kid.length > 0, 'the JWS header names no kid');
  return { payload, protectedHeader };
}

/**
 * The authorization code flow with PKCE for client `c`: openid-client validates the
 * authorization response (state, iss) and the ID token (signature, iss, aud, exp, iat, nonce,
 * algorithm); jose verifies the ID token again on its own.
 */
async function codeFlow(check, c, config, user) {
  const scope = 'openid email profile offline_access';
  const { url, checks } = await authorizationRequest(config, scope);
  let callback;
  await check(`${c.label}: authorization request (S256 PKCE, state, nonce) redirects back with a code`, async () => {
    callback = await browse(url);
    const registered = new URL(cfg.redirectUri);
    assertEqual(`${callback.origin}${callback.pathname}`, `${registered.origin}${registered.pathname}`, 'redirect target');
    assert(callback.searchParams.get('code'), `no code in ${callback.search}`);
    return `${url.origin}${url.pathname} → ${callback.origin}${callback.pathname}`;
  });
  let tokens;
  await check(`${c.label}: authorizationCodeGrant (state, iss, PKCE, ID token signature/iss/aud/nonce/exp)`, async () => {
    tokens = await client.authorizationCodeGrant(config, callback, checks);
    assertEqual(tokens.token_type, 'bearer', 'token_type (lower-cased by openid-client)');
    assert(tokens.access_token, 'no access_token');
    assert(tokens.id_token, 'no id_token');
    assert(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, `expires_in ${tokens.expires_in}`);
    const claims = tokens.claims();
    assertEqual(claims.sub, user.id, 'ID token sub');
    assertEqual(claims.email, user.email, 'ID token email');
    return `sub ${claims.sub}`;
  });
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  await check(`${c.label}: ID token verifies with jose (JWKS, iss, aud, ${c.alg}, nonce)`, async () => {
    const { payload, protectedHeader } = await joseVerify(jwks, tokens.id_token, c, {
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'auth_time'],
    });
    assertEqual(protectedHeader.alg, c.alg, 'ID token alg');
    assertEqual(payload.nonce, checks.expectedNonce, 'nonce');
    assertEqual(payload.sub, user.id, 'sub');
    assert(payload.exp > payload.iat, 'exp is not after iat');
    if (payload.azp !== undefined) assertEqual(payload.azp, c.id, 'azp');
    return `kid ${protectedHeader.kid}`;
  });
  return { tokens, jwks, nonce: checks.expectedNonce };
}

// ---- the checks ------------------------------------------------------------------------------

async function main() {
  console.log(`conformance: openid-client + jose against ${cfg.issuer}`);
  let user;
  let confidential;

  let ready = false;
  await section('discovery', async (check) => {
    await check('the session cookie signs the user in (GET /v1/me)', async () => {
      const r = await me();
      assertEqual(r.status, 200, `GET /v1/me status (${JSON.stringify(r.body).slice(0, 200)})`);
      user = { id: r.body.user.id, email: r.body.user.email };
      return user.email;
    });
    await check('discovery: /.well-known/openid-configuration accepted by openid-client', async () => {
      confidential = await configure(cfg.confidential);
      const m = confidential.serverMetadata();
      assertEqual(m.issuer, cfg.issuer, 'issuer');
      for (const e of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'end_session_endpoint']) {
        assert(typeof m[e] === 'string' && new URL(m[e]).origin === issuerUrl.origin, `${e} missing or off-origin: ${m[e]}`);
      }
      assert(m.supportsPKCE('S256'), 'S256 is not in code_challenge_methods_supported');
      for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
        assert(m.grant_types_supported?.includes(g), `grant_types_supported lacks ${g}`);
      }
      for (const alg of new Set([cfg.confidential.alg, cfg.public.alg, ...cfg.extra.map((c) => c.alg)])) {
        assert(m.id_token_signing_alg_values_supported?.includes(alg), `id_token_signing_alg_values_supported lacks ${alg}`);
      }
      return `${m.id_token_signing_alg_values_supported.join(', ')}`;
    });
    await check('JWKS: public signing keys only, each with kid, kty and use=sig', async () => {
      const r = await fetch(confidential.serverMetadata().jwks_uri, { signal: timeout() });
      assertEqual(r.status, 200, 'JWKS status');
      const { keys } = await r.json();
      assert(Array.isArray(keys) && keys.length > 0, 'no keys');
      const kids = new Set();
      for (const k of keys) {
        for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert(!(priv in k), `key ${k.kid} exposes private member ${priv}`);
        assert(k.kid && k.kty, `key without kid/kty: ${JSON.stringify(k)}`);
        assert(k.use === undefined || k.use === 'sig', `key ${k.kid} has use ${k.use}`);
        assert(!kids.has(k.kid), `duplicate kid ${k.kid}`);
        kids.add(k.kid);
        await jose.importJWK(k, k.alg); // each key must be usable as published
      }
      return `${keys.length} key(s): ${keys.map((k) => k.alg ?? k.kty).join(', ')}`;
    });
    ready = true;
  });
  if (!ready) return;

  await section('client_credentials', async (check) => {
    let tokens;
    await check('clientCredentialsGrant (client_secret_basic)', async () => {
      tokens = await client.clientCredentialsGrant(confidential);
      assertEqual(tokens.token_type, 'bearer', 'token_type');
      assert(tokens.access_token, 'no access_token');
      assertEqual(tokens.refresh_token, undefined, 'refresh_token (none without a user)');
      assertEqual(tokens.id_token, undefined, 'id_token (none without a user)');
      return `expires_in ${tokens.expires_in}`;
    });
    await check('client_credentials access token verifies with jose (sub = client)', async () => {
      const jwks = jose.createRemoteJWKSet(new URL(confidential.serverMetadata().jwks_uri));
      const { payload } = await joseVerify(jwks, tokens.access_token, cfg.confidential);
      assertEqual(payload.sub, cfg.confidential.id, 'sub');
    });
    await check('tokenIntrospection: the client_credentials token is active', async () => {
      const i = await client.tokenIntrospection(confidential, tokens.access_token);
      assertEqual(i.active, true, 'active');
      assertEqual(i.client_id, cfg.confidential.id, 'client_id');
    });
    await check('client_credentials with scope=openid is refused (invalid_scope)', async () => {
      const err = await rejects(client.clientCredentialsGrant(confidential, { scope: 'openid' }), 'client_credentials with openid');
      assert(err instanceof client.ResponseBodyError, describe(err));
      assertEqual(err.error, 'invalid_scope', 'error');
    });
  });

  let logoutHint;
  await section(`authorization code + PKCE, ${cfg.confidential.label} (${cfg.confidential.alg})`, async (check) => {
    const c = cfg.confidential;
    const { tokens, jwks } = await codeFlow(check, c, confidential, user);
    logoutHint = tokens.id_token;
    await check('access token verifies with jose (JWKS, iss, aud)', async () => {
      const { payload } = await joseVerify(jwks, tokens.access_token, c);
      assertEqual(payload.sub, user.id, 'sub');
    });
    await check('fetchUserInfo with the expected subject', async () => {
      const info = await client.fetchUserInfo(confidential, tokens.access_token, user.id);
      assertEqual(info.sub, user.id, 'sub');
      assertEqual(info.email, user.email, 'email');
    });
    let refreshed;
    await check('refreshTokenGrant rotates the refresh token; its ID token validates', async () => {
      assert(tokens.refresh_token, 'the code grant returned no refresh_token');
      refreshed = await client.refreshTokenGrant(confidential, tokens.refresh_token);
      assert(refreshed.refresh_token, 'no new refresh_token');
      assert(refreshed.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
      assert(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'no new access_token');
      if (refreshed.id_token) assertEqual(refreshed.claims().sub, user.id, 'refreshed ID token sub');
      return refreshed.id_token ? 'with a new ID token' : 'without an ID token';
    });
    if (refreshed.id_token) {
      await check('refreshed ID token verifies with jose', async () => {
        const { payload } = await joseVerify(jwks, refreshed.id_token, c);
        assertEqual(payload.sub, user.id, 'sub');
      });
    }
    await check('fetchUserInfo with the refreshed access token', async () => {
      const info = await client.fetchUserInfo(confidential, refreshed.access_token, user.id);
      assertEqual(info.sub, user.id, 'sub');
    });
    await check('tokenIntrospection: the live access token is active', async () => {
      const i = await client.tokenIntrospection(confidential, refreshed.access_token);
      assertEqual(i.active, true, 'active');
      assertEqual(i.sub, user.id, 'sub');
      assertEqual(i.client_id, c.id, 'client_id');
      assert(typeof i.exp === 'number' && i.exp * 1000 > Date.now(), `exp ${i.exp}`);
      assert(String(i.scope).split(' ').includes('openid'), `scope ${i.scope}`);
    });
    await check('tokenIntrospection: the live refresh token is active; the rotated one is not', async () => {
      const live = await client.tokenIntrospection(confidential, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
      assertEqual(live.active, true, 'active (current refresh token)');
      const old = await client.tokenIntrospection(confidential, tokens.refresh_token, { token_type_hint: 'refresh_token' });
      assertEqual(old.active, false, 'active (rotated refresh token)');
    });
    await check('tokenRevocation of the access token; introspection then says inactive', async () => {
      await client.tokenRevocation(confidential, refreshed.access_token, { token_type_hint: 'access_token' });
      const i = await client.tokenIntrospection(confidential, refreshed.access_token);
      assertEqual(i.active, false, 'active after revocation');
    });
    await check('the revoked access token is refused by userinfo', async () => {
      const err = await rejects(client.fetchUserInfo(confidential, refreshed.access_token, user.id), 'userinfo with a revoked token');
      assert(err instanceof client.WWWAuthenticateChallengeError || err instanceof client.ResponseBodyError, describe(err));
      return describe(err).split(';')[0];
    });
    await check('tokenRevocation of the refresh token; introspection then says inactive, refresh fails', async () => {
      await client.tokenRevocation(confidential, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
      const i = await client.tokenIntrospection(confidential, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
      assertEqual(i.active, false, 'active after revocation');
      const err = await rejects(client.refreshTokenGrant(confidential, refreshed.refresh_token), 'refresh with a revoked token');
      assert(err instanceof client.ResponseBodyError, describe(err));
      assertEqual(err.error, 'invalid_grant', 'error');
    });
  });

  for (const c of cfg.extra) {
    await section(`authorization code + PKCE, ${c.label}`, async (check) => {
      let config;
      await check(`${c.label}: discovery`, async () => {
        config = await configure(c);
      });
      const { tokens } = await codeFlow(check, c, config, user);
      await check(`${c.label}: fetchUserInfo`, async () => {
        const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
        assertEqual(info.sub, user.id, 'sub');
      });
      await check(`${c.label}: refreshTokenGrant; the new ID token validates`, async () => {
        const r = await client.refreshTokenGrant(config, tokens.refresh_token);
        assert(r.refresh_token && r.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
        if (r.id_token) assertEqual(r.claims().sub, user.id, 'sub');
      });
    });
  }

  await section(`authorization code + PKCE, ${cfg.public.label} (none, ${cfg.public.alg})`, async (check) => {
    const c = cfg.public;
    let config;
    await check('public client: discovery (token_endpoint_auth_method none)', async () => {
      config = await configure(c);
    });
    const { tokens } = await codeFlow(check, c, config, user);
    await check('public client: fetchUserInfo', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
      assertEqual(info.sub, user.id, 'sub');
    });
    let refreshed;
    await check('public client: refreshTokenGrant rotates the refresh token', async () => {
      assert(tokens.refresh_token, 'no refresh_token');
      refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
    });
    await check('public client: tokenRevocation of the refresh token; refresh then fails', async () => {
      await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
      const err = await rejects(client.refreshTokenGrant(config, refreshed.refresh_token), 'refresh with a revoked token');
      assert(err instanceof client.ResponseBodyError, describe(err));
      assertEqual(err.error, 'invalid_grant', 'error');
    });
    await check('public client: a wrong code_verifier is refused (invalid_grant)', async () => {
      const { url, checks } = await authorizationRequest(config, 'openid');
      const callback = await browse(url);
      const wrong = { ...checks, pkceCodeVerifier: client.randomPKCECodeVerifier() };
      const err = await rejects(client.authorizationCodeGrant(config, callback, wrong), 'a code grant with the wrong verifier');
      assert(err instanceof client.ResponseBodyError, describe(err));
      assertEqual(err.error, 'invalid_grant', 'error');
    });
    await check('public client: an authorization request without PKCE is refused', async () => {
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: cfg.redirectUri,
        scope: 'openid',
        state: client.randomState(),
      });
      const callback = await browse(url);
      const err = await rejects(
        client.authorizationCodeGrant(config, callback, { expectedState: url.searchParams.get('state') }),
        'the code flow without PKCE',
      );
      assert(err instanceof client.AuthorizationResponseError, describe(err));
      assertEqual(err.error, 'invalid_request', 'error');
    });
  });

  await section('RP-initiated logout', async (check) => {
    assert(logoutHint, 'no ID token from the confidential client to use as id_token_hint');
    const state = client.randomState();
    let r;
    await check('the session is still live before logout', async () => {
      const m = await me();
      assertEqual(m.status, 200, 'GET /v1/me status');
    });
    await check('buildEndSessionUrl (id_token_hint, post_logout_redirect_uri, state) redirects to the registered URI with state', async () => {
      const url = client.buildEndSessionUrl(confidential, {
        id_token_hint: logoutHint,
        post_logout_redirect_uri: cfg.postLogoutRedirectUri,
        state,
      });
      r = await fetch(url, { headers: { cookie }, redirect: 'manual', signal: timeout() });
      const location = r.headers.get('location');
      assert([302, 303, 307].includes(r.status) && location, `status ${r.status}, Location ${location}`);
      const target = new URL(location);
      const registered = new URL(cfg.postLogoutRedirectUri);
      assertEqual(`${target.origin}${target.pathname}`, `${registered.origin}${registered.pathname}`, 'redirect target');
      assertEqual(target.searchParams.get('state'), state, 'state');
      return `${r.status} → ${location}`;
    });
    await check('logout clears the session cookie', async () => {
      const set = r.headers.getSetCookie().find((h) => h.startsWith(`${cfg.cookieName}=`));
      assert(set, `no Set-Cookie for ${cfg.cookieName}`);
      assert(/max-age=0/i.test(set) || /expires=thu, 01 jan 1970/i.test(set), `the cookie is not cleared: ${set}`);
    });
    await check('the session cookie no longer works on /v1/me', async () => {
      const m = await me();
      assertEqual(m.status, 401, 'GET /v1/me status after logout');
    });
    await check('after logout, prompt=none gets login_required', async () => {
      const { url, checks } = await authorizationRequest(confidential, 'openid', { prompt: 'none' });
      const callback = await browse(url);
      const err = await rejects(client.authorizationCodeGrant(confidential, callback, checks), 'prompt=none after logout');
      assert(err instanceof client.AuthorizationResponseError, describe(err));
      assertEqual(err.error, 'login_required', 'error');
    });
  });
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL unexpected error: ${describe(err)}`);
  if (err instanceof Error && err.stack) console.error(err.stack);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
