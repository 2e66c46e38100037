// oauth4webapi v3 (a certified OAuth 2 / OpenID Connect client library, the
// engine under openid-client and Auth.js) against a real Gatehouse, with every
// check the library makes left on. The one switch is [allowInsecureRequests],
// because the test server is http://127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as oauth from 'oauth4webapi';

import {
  CookieJar,
  atHash,
  createClient,
  createUser,
  followRedirects,
  loginViaForm,
  startGatehouse,
} from './lib/gatehouse.mjs';
import { Authenticator } from './lib/totp.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const SCOPE = 'openid email profile offline_access';
const http = { [oauth.allowInsecureRequests]: true };

let gh;
let user;
let as; // the discovered authorization server metadata
before(async () => {
  gh = await startGatehouse();
  user = await createUser(gh, 'ada@example.com', PASSWORD, ['--name', 'Ada Lovelace']);
  const issuer = new URL(gh.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...http }));
});
after(() => gh?.stop());

/**
 * A full authorization code + PKCE S256 + state + nonce round trip. params
 * are added to the authorization request; maxAge (seconds) is sent as
 * max_age and checked by the library against auth_time. The rest goes to
 * loginViaForm (second factors: authenticator, recoveryCode, recoveryCodes).
 */
async function codeFlow(
  c,
  auth,
  redirectUri,
  { jar, email = user.email, password = PASSWORD, sso = false, stats, params = {}, maxAge, ...walk } = {},
) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const authorizationUrl = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: c.client_id,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(maxAge !== undefined && { max_age: String(maxAge) }),
    ...params,
  })) {
    authorizationUrl.searchParams.set(k, v);
  }
  const callback = sso
    ? await followRedirects(authorizationUrl, { cookieJar: jar, redirectUri })
    : await loginViaForm({ authorizationUrl, email, password, cookieJar: jar, redirectUri, stats, ...walk });
  assert.equal(callback.origin + callback.pathname, redirectUri);
  const authResponse = oauth.validateAuthResponse(as, c, callback, state); // checks iss (RFC 9207) and state
  const response = await oauth.authorizationCodeGrantRequest(as, c, auth, authResponse, redirectUri, codeVerifier, http);
  const tokens = await oauth.processAuthorizationCodeResponse(as, c, response, { expectedNonce: nonce, requireIdToken: true, maxAge });
  // An added check, not a relaxed one: the ID token's signature against JWKS.
  await oauth.validateApplicationLevelSignature(as, response, http);
  return { tokens, claims: oauth.getValidatedIdTokenClaims(tokens) };
}

async function userinfo(c, accessToken, expectedSubject) {
  const res = await oauth.userInfoRequest(as, c, accessToken, http);
  return oauth.processUserInfoResponse(as, c, expectedSubject, res);
}

async function refresh(c, auth, refreshToken) {
  const res = await oauth.refreshTokenGrantRequest(as, c, auth, refreshToken, http);
  return oauth.processRefreshTokenResponse(as, c, res);
}

async function introspect(c, auth, token) {
  const res = await oauth.introspectionRequest(as, c, auth, token, http);
  return oauth.processIntrospectionResponse(as, c, res);
}

async function revoke(c, auth, token) {
  const res = await oauth.revocationRequest(as, c, auth, token, http);
  await oauth.processRevocationResponse(res);
}

async function assertRefused(promise, error) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof oauth.ResponseBodyError, `expected a ResponseBodyError, got ${err}`);
    assert.equal(err.error, error);
    return true;
  });
}

const kinds = [
  {
    name: 'confidential client, client_secret_basic',
    args: ['--grant-types', 'authorization_code,refresh_token,client_credentials'],
    auth: (reg) => oauth.ClientSecretBasic(reg.client_secret),
    confidential: true,
  },
  {
    name: 'confidential client, client_secret_post',
    args: ['--auth-method', 'client_secret_post', '--grant-types', 'authorization_code,refresh_token,client_credentials'],
    auth: (reg) => oauth.ClientSecretPost(reg.client_secret),
    confidential: true,
  },
  {
    name: 'public client (spa), PKCE only',
    args: ['--type', 'spa', '--public'],
    auth: () => oauth.None(),
    confidential: false,
  },
];

for (const [i, kind] of kinds.entries()) {
  describe(`oauth4webapi: ${kind.name}`, () => {
    const redirectUri = `http://127.0.0.1:9/o4w-${i}/callback`;
    const postLogoutUri = `http://127.0.0.1:9/o4w-${i}/signed-out`;
    const jar = new CookieJar();
    let c; // the library's client metadata
    let auth; // the library's client authentication
    let first; // tokens and claims of the first sign-in
    let refreshed;

    before(async () => {
      const reg = await createClient(gh, [
        '--name',
        `oauth4webapi ${kind.name}`,
        '--redirect-uri',
        redirectUri,
        '--post-logout-redirect-uri',
        postLogoutUri,
        ...kind.args,
      ]);
      assert.equal(Boolean(reg.client_secret), kind.confidential);
      c = { client_id: reg.client_id };
      auth = kind.auth(reg);
    });

    it('discovery metadata', () => {
      assert.equal(as.issuer, gh.issuer);
      assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
      assert.equal(as.authorization_response_iss_parameter_supported, true);
      assert.ok(as.end_session_endpoint);
    });

    it('signs in: authorization code + PKCE S256 + state + nonce through the sign-in form', async () => {
      first = await codeFlow(c, auth, redirectUri, { jar });
      const { claims, tokens } = first;
      assert.equal(claims.iss, gh.issuer);
      assert.equal(claims.sub, user.id);
      assert.deepEqual([claims.aud].flat(), [c.client_id]);
      assert.equal(claims.role, 'USER');
      assert.equal(claims.email_verified, true);
      assert.equal(claims.email, 'ada@example.com');
      assert.equal(claims.name, 'Ada Lovelace');
      assert.equal(typeof claims.sid, 'string');
      assert.equal(typeof claims.auth_time, 'number');
      if (claims.at_hash !== undefined) assert.equal(claims.at_hash, await atHash(tokens.access_token));
      assert.equal(tokens.token_type, 'bearer');
      assert.ok(tokens.expires_in > 0);
      assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    });

    it('userinfo returns the same subject and claims', async () => {
      const info = await userinfo(c, first.tokens.access_token, first.claims.sub);
      assert.equal(info.sub, user.id);
      assert.equal(info.role, 'USER');
      assert.equal(info.email_verified, true);
      assert.equal(info.email, 'ada@example.com');
    });

    if (kind.confidential) {
      it('introspection: the access token is active and carries role', async () => {
        const res = await introspect(c, auth, first.tokens.access_token);
        assert.equal(res.active, true);
        assert.equal(res.sub, user.id);
        assert.equal(res.client_id, c.client_id);
        assert.equal(res.role, 'USER');
      });
    }

    it('refresh rotates the refresh token', async () => {
      refreshed = await refresh(c, auth, first.tokens.refresh_token);
      assert.ok(refreshed.access_token);
      assert.ok(refreshed.refresh_token);
      assert.notEqual(refreshed.refresh_token, first.tokens.refresh_token);
      assert.notEqual(refreshed.access_token, first.tokens.access_token);
      if (refreshed.id_token) assert.equal(oauth.getValidatedIdTokenClaims(refreshed).sub, user.id);
      const info = await userinfo(c, refreshed.access_token, user.id);
      assert.equal(info.sub, user.id);
    });

    it('revocation: a revoked access token is refused', async () => {
      await revoke(c, auth, first.tokens.access_token);
      if (kind.confidential) {
        const res = await introspect(c, auth, first.tokens.access_token);
        assert.equal(res.active, false);
      }
      await assert.rejects(userinfo(c, first.tokens.access_token, user.id), (err) => {
        assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err));
        assert.equal(err.status, 401);
        assert.equal(err.cause[0].parameters.error, 'invalid_token');
        return true;
      });
    });

    it('revocation: a revoked refresh token is refused, and so is its grant', async () => {
      await revoke(c, auth, refreshed.refresh_token);
      await assertRefused(refresh(c, auth, refreshed.refresh_token), 'invalid_grant');
      if (kind.confidential) {
        const res = await introspect(c, auth, refreshed.access_token);
        assert.equal(res.active, false, 'access tokens of a revoked refresh-token grant are inactive');
      }
    });

    let sso;
    it('single sign-on: a second authorization with the same cookies skips the form', async () => {
      sso = await codeFlow(c, auth, redirectUri, { jar, sso: true });
      assert.equal(sso.claims.sub, user.id);
      assert.equal(sso.claims.sid, first.claims.sid);
    });

    it('RP-initiated logout returns to the post_logout_redirect_uri with state', async () => {
      // oauth4webapi has no end-session helper: the URL is the discovered
      // end_session_endpoint with the spec's parameters.
      const state = oauth.generateRandomState();
      const endSession = new URL(as.end_session_endpoint);
      endSession.searchParams.set('id_token_hint', sso.tokens.id_token);
      endSession.searchParams.set('post_logout_redirect_uri', postLogoutUri);
      endSession.searchParams.set('state', state);
      const back = await followRedirects(endSession, { cookieJar: jar, redirectUri: postLogoutUri });
      assert.equal(back.origin + back.pathname, postLogoutUri);
      assert.equal(back.searchParams.get('state'), state);
      // The session's grants ended with it.
      await assertRefused(refresh(c, auth, sso.tokens.refresh_token), 'invalid_grant');
      // And the next authorization in this browser asks for the password again.
      const stats = {};
      const again = await codeFlow(c, auth, redirectUri, { jar, stats });
      assert.equal(stats.login, 1, 'the sign-in form was shown');
      assert.notEqual(again.claims.sid, sso.claims.sid);
    });

    if (kind.confidential) {
      it('client_credentials grant', async () => {
        const res = await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), http);
        const cc = await oauth.processClientCredentialsResponse(as, c, res);
        assert.ok(cc.access_token);
        assert.equal(cc.refresh_token, undefined);
        assert.equal(cc.id_token, undefined);
        const info = await introspect(c, auth, cc.access_token);
        assert.equal(info.active, true);
        assert.equal(info.client_id, c.client_id);
      });
    }
  });
}

describe('oauth4webapi: an unverified ADMIN user', () => {
  const redirectUri = 'http://127.0.0.1:9/o4w-unverified/callback';
  it('gets email_verified false and role ADMIN in the ID token and userinfo', async () => {
    const unverified = await createUser(gh, 'grace@example.com', PASSWORD, ['--unverified', '--role', 'ADMIN']);
    assert.equal(unverified.email_verified, false);
    const reg = await createClient(gh, ['--redirect-uri', redirectUri]);
    const c = { client_id: reg.client_id };
    const { claims, tokens } = await codeFlow(c, oauth.ClientSecretBasic(reg.client_secret), redirectUri, {
      email: unverified.email,
    });
    assert.equal(claims.sub, unverified.id);
    assert.equal(claims.email_verified, false);
    assert.equal(claims.role, 'ADMIN');
    const info = await userinfo(c, tokens.access_token, unverified.id);
    assert.equal(info.email_verified, false);
    assert.equal(info.role, 'ADMIN');
  });
});

describe('oauth4webapi: the checks are really on', () => {
  const redirectUri = 'http://127.0.0.1:9/o4w-checks/callback';
  it('refuses an authorization response with a foreign iss or a wrong state, then accepts the real one', async () => {
    const reg = await createClient(gh, ['--redirect-uri', redirectUri]);
    const c = { client_id: reg.client_id };
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorizationUrl = new URL(as.authorization_endpoint);
    authorizationUrl.search = new URLSearchParams({
      client_id: c.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    }).toString();
    const callback = await loginViaForm({ authorizationUrl, email: user.email, password: PASSWORD, redirectUri });
    const forged = new URL(callback);
    forged.searchParams.set('iss', 'http://127.0.0.1:1');
    assert.throws(() => oauth.validateAuthResponse(as, c, forged, state), /"iss"/);
    assert.throws(() => oauth.validateAuthResponse(as, c, callback, 'other'), /"state"/);
    const params = oauth.validateAuthResponse(as, c, callback, state);
    const auth = oauth.ClientSecretBasic(reg.client_secret);
    const res = await oauth.authorizationCodeGrantRequest(as, c, auth, params, redirectUri, codeVerifier, http);
    const tokens = await oauth.processAuthorizationCodeResponse(as, c, res, { requireIdToken: true });
    assert.equal(oauth.getValidatedIdTokenClaims(tokens).sub, user.id);
  });
});

describe('oauth4webapi: second factors: acr, amr, auth_time, step-up and prompt=none', () => {
  const ACR_SINGLE = 'urn:gatehouse:acr:single-factor';
  const ACR_MFA = 'urn:gatehouse:acr:mfa';
  const ACR_PHISHING_RESISTANT = 'urn:gatehouse:acr:phishing-resistant';
  const MAX_AGE = 300; // seconds: generous, the point is that auth_time is checked
  const redirectUri = 'http://127.0.0.1:9/o4w-mfa/callback';
  const jar = new CookieJar(); // the browser that steps up
  const app = new Authenticator(); // the user's authenticator app, empty until enrolment
  const recoveryCodes = [];
  let hedy; // a user of her own: once she has a factor, every sign-in of hers asks for it
  let c;
  let auth;
  let single; // claims of the password-only sign-in
  let stepped; // claims after the step-up

  before(async () => {
    hedy = await createUser(gh, 'hedy@example.com', PASSWORD, ['--name', 'Hedy Lamarr']);
    const reg = await createClient(gh, ['--name', 'oauth4webapi mfa', '--redirect-uri', redirectUri]);
    // require_auth_time: the library refuses an ID token without auth_time.
    c = { client_id: reg.client_id, require_auth_time: true };
    auth = oauth.ClientSecretBasic(reg.client_secret);
  });

  it('discovery lists the acr values', () => {
    assert.ok(Array.isArray(as.acr_values_supported), 'acr_values_supported is a list');
    // On 127.0.0.1 there are no passkeys (an IP address cannot be a WebAuthn
    // RP ID), so phishing-resistant is not offered.
    assert.deepEqual([...as.acr_values_supported].sort(), [ACR_MFA, ACR_SINGLE].sort());
  });

  it('a password-only sign-in is single-factor: acr, amr ["pwd"], auth_time (max_age checked)', async () => {
    const before = Math.floor(Date.now() / 1000);
    ({ claims: single } = await codeFlow(c, auth, redirectUri, { jar, email: hedy.email, maxAge: MAX_AGE }));
    assert.equal(single.sub, hedy.id);
    assert.equal(single.acr, ACR_SINGLE);
    assert.deepEqual(single.amr, ['pwd']);
    assert.ok(single.auth_time >= before - 1 && single.auth_time <= Math.ceil(Date.now() / 1000) + 1, `auth_time ${single.auth_time}`);
  });

  it('prompt=none with acr_values=mfa for a single-factor session: interaction_required at the redirect', async () => {
    const state = oauth.generateRandomState();
    const authorizationUrl = new URL(as.authorization_endpoint);
    authorizationUrl.search = new URLSearchParams({
      client_id: c.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
      state,
      nonce: oauth.generateRandomNonce(),
      prompt: 'none',
      acr_values: ACR_MFA,
    }).toString();
    const callback = await followRedirects(authorizationUrl, { cookieJar: jar, redirectUri });
    assert.equal(callback.origin + callback.pathname, redirectUri);
    assert.equal(callback.searchParams.get('code'), null, 'no code');
    // The library checks iss and state first, then surfaces the error.
    assert.throws(
      () => oauth.validateAuthResponse(as, c, callback, state),
      (err) => {
        assert.ok(err instanceof oauth.AuthorizationResponseError, `expected an AuthorizationResponseError, got ${err}`);
        assert.equal(err.error, 'interaction_required');
        return true;
      },
    );
  });

  it('step-up: acr_values=mfa sends the same session to enrol a factor, not to the password form', async () => {
    const stats = {};
    ({ claims: stepped } = await codeFlow(c, auth, redirectUri, {
      jar,
      password: null, // the walk fails if the sign-in form is shown
      authenticator: app,
      recoveryCodes,
      stats,
      maxAge: MAX_AGE,
      params: { acr_values: ACR_MFA },
    }));
    assert.deepEqual(stats, { login: 0, consent: 0, factor: 0, setup: 1, totp: 1, recovery: 1 });
    assert.equal(recoveryCodes.length, 10);
    assert.equal(stepped.sub, hedy.id);
    assert.equal(stepped.sid, single.sid, 'the same SSO session, stepped up');
    assert.equal(stepped.acr, ACR_MFA);
    assert.deepEqual([...stepped.amr].sort(), ['mfa', 'otp', 'pwd']);
    assert.ok(stepped.auth_time >= single.auth_time, `auth_time ${stepped.auth_time} before the first sign-in's ${single.auth_time}`);
  });

  it('prompt=none with acr_values=mfa now succeeds without a page', async () => {
    const params = { prompt: 'none', acr_values: ACR_MFA };
    const { claims } = await codeFlow(c, auth, redirectUri, { jar, sso: true, maxAge: MAX_AGE, params });
    assert.equal(claims.sid, single.sid);
    assert.equal(claims.acr, ACR_MFA);
  });

  it('phishing-resistant cannot be reached without passkeys (an IP-address issuer): the strongest there is, and acr says so', async () => {
    // acr_values is a request, not a guarantee (OIDC Core 3.1.2.1): the app
    // reads acr and decides. This issuer does not offer the value either.
    const params = { prompt: 'none', acr_values: ACR_PHISHING_RESISTANT };
    const { claims } = await codeFlow(c, auth, redirectUri, { jar, sso: true, maxAge: MAX_AGE, params });
    assert.equal(claims.acr, ACR_MFA);
  });

  it('another browser: password and a recovery code; the code works once', async () => {
    const [code] = recoveryCodes;
    const stats = {};
    const { claims } = await codeFlow(c, auth, redirectUri, { jar: new CookieJar(), email: hedy.email, recoveryCode: code, stats });
    assert.deepEqual(stats, { login: 1, consent: 0, factor: 1, setup: 0, totp: 0, recovery: 0 });
    assert.equal(claims.sub, hedy.id);
    assert.equal(claims.acr, ACR_MFA);
    assert.deepEqual([...claims.amr].sort(), ['mfa', 'otp', 'pwd']);
    assert.ok(claims.auth_time >= stepped.auth_time);
    await assert.rejects(codeFlow(c, auth, redirectUri, { jar: new CookieJar(), email: hedy.email, recoveryCode: code }), (err) => {
      assert.equal(err.status, 400, String(err));
      assert.match(err.html, /That recovery code is not right, or it was already used/);
      return true;
    });
  });

  it('another browser: password and the authenticator app\'s next code', async () => {
    const stats = {};
    const { claims } = await codeFlow(c, auth, redirectUri, {
      jar: new CookieJar(),
      email: hedy.email,
      authenticator: app,
      stats,
      maxAge: MAX_AGE,
    });
    assert.deepEqual(stats, { login: 1, consent: 0, factor: 1, setup: 0, totp: 0, recovery: 0 });
    assert.equal(claims.acr, ACR_MFA);
    assert.deepEqual([...claims.amr].sort(), ['mfa', 'otp', 'pwd']);
  });
});
