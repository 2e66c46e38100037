// openid-client v6 (a certified OpenID Connect relying party library) against
// a real Gatehouse, with every check the library makes left on. The one switch
// is allowInsecureRequests, because the test server is http://127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as client from 'openid-client';

import {
  CookieJar,
  atHash,
  createClient,
  createUser,
  followRedirects,
  loginViaForm,
  signOutViaForm,
  startGatehouse,
} from './lib/gatehouse.mjs';
import { BACKCHANNEL_LOGOUT_EVENT, settledDeliveries, startLogoutReceiver } from './lib/backchannel.mjs';
import { Authenticator } from './lib/totp.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const SCOPE = 'openid email profile offline_access';

let gh;
let user;
before(async () => {
  gh = await startGatehouse();
  user = await createUser(gh, 'ada@example.com', PASSWORD, ['--name', 'Ada Lovelace']);
});
after(() => gh?.stop());

/** Discovery with the library; http is allowed only because the test issuer is http. */
function discover(clientId, clientAuth, metadata) {
  return client.discovery(new URL(gh.issuer), clientId, metadata, clientAuth, {
    // enableNonRepudiationChecks adds a check (the ID token's signature
    // against the JWKS); it relaxes nothing.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
}

/**
 * A full authorization code + PKCE S256 + state + nonce round trip. params
 * are added to the authorization request; maxAge (seconds) is sent as
 * max_age and checked by the library against auth_time. The rest goes to
 * loginViaForm (second factors: authenticator, recoveryCode, recoveryCodes).
 */
async function codeFlow(
  config,
  redirectUri,
  { jar, email = user.email, password = PASSWORD, sso = false, stats, params = {}, maxAge, ...walk } = {},
) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(maxAge !== undefined && { max_age: String(maxAge) }),
    ...params,
  });
  const callback = sso
    ? await followRedirects(authorizationUrl, { cookieJar: jar, redirectUri })
    : await loginViaForm({ authorizationUrl, email, password, cookieJar: jar, redirectUri, stats, ...walk });
  assert.equal(callback.origin + callback.pathname, redirectUri);
  assert.equal(callback.searchParams.get('iss'), gh.issuer, 'RFC 9207 iss in the authorization response');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
    maxAge,
  });
  return { tokens, nonce };
}

async function assertRefused(promise, error) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected a ResponseBodyError, got ${err}`);
    assert.equal(err.error, error);
    return true;
  });
}

const kinds = [
  {
    name: 'confidential client, client_secret_basic',
    args: ['--grant-types', 'authorization_code,refresh_token,client_credentials'],
    auth: (c) => client.ClientSecretBasic(c.client_secret),
    confidential: true,
  },
  {
    name: 'confidential client, client_secret_post',
    args: ['--auth-method', 'client_secret_post', '--grant-types', 'authorization_code,refresh_token,client_credentials'],
    auth: (c) => client.ClientSecretPost(c.client_secret),
    confidential: true,
  },
  {
    name: 'public client (spa), PKCE only',
    args: ['--type', 'spa', '--public'],
    auth: () => client.None(),
    confidential: false,
  },
];

for (const [i, kind] of kinds.entries()) {
  describe(`openid-client: ${kind.name}`, () => {
    const redirectUri = `http://127.0.0.1:9/oc-${i}/callback`;
    const postLogoutUri = `http://127.0.0.1:9/oc-${i}/signed-out`;
    const jar = new CookieJar();
    let reg;
    let config;
    let first; // tokens of the first sign-in
    let refreshed; // tokens of the refresh

    before(async () => {
      reg = await createClient(gh, [
        '--name',
        `openid-client ${kind.name}`,
        '--redirect-uri',
        redirectUri,
        '--post-logout-redirect-uri',
        postLogoutUri,
        ...kind.args,
      ]);
      assert.equal(Boolean(reg.client_secret), kind.confidential);
    });

    it('discovers the issuer', async () => {
      config = await discover(reg.client_id, kind.auth(reg));
      const meta = config.serverMetadata();
      assert.equal(meta.issuer, gh.issuer);
      assert.ok(meta.supportsPKCE('S256'));
      assert.equal(meta.authorization_response_iss_parameter_supported, true);
      assert.ok(meta.end_session_endpoint);
    });

    it('signs in: authorization code + PKCE S256 + state + nonce through the sign-in form', async () => {
      const { tokens } = await codeFlow(config, redirectUri, { jar });
      first = tokens;
      const claims = tokens.claims();
      assert.equal(claims.iss, gh.issuer);
      assert.equal(claims.sub, user.id);
      assert.deepEqual([claims.aud].flat(), [reg.client_id]);
      assert.equal(claims.role, 'USER');
      assert.equal(claims.email_verified, true);
      assert.equal(claims.email, 'ada@example.com');
      assert.equal(claims.name, 'Ada Lovelace');
      assert.equal(typeof claims.sid, 'string');
      assert.equal(typeof claims.auth_time, 'number');
      if (claims.at_hash !== undefined) assert.equal(claims.at_hash, await atHash(tokens.access_token));
      assert.equal(tokens.token_type, 'bearer');
      assert.ok(tokens.expiresIn() > 0);
      assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    });

    it('userinfo returns the same subject and claims', async () => {
      const info = await client.fetchUserInfo(config, first.access_token, first.claims().sub);
      assert.equal(info.sub, user.id);
      assert.equal(info.role, 'USER');
      assert.equal(info.email_verified, true);
      assert.equal(info.email, 'ada@example.com');
    });

    if (kind.confidential) {
      it('introspection: the access token is active and carries role', async () => {
        const res = await client.tokenIntrospection(config, first.access_token);
        assert.equal(res.active, true);
        assert.equal(res.sub, user.id);
        assert.equal(res.client_id, reg.client_id);
        assert.equal(res.role, 'USER');
      });
    }

    it('refresh rotates the refresh token', async () => {
      refreshed = await client.refreshTokenGrant(config, first.refresh_token);
      assert.ok(refreshed.access_token);
      assert.ok(refreshed.refresh_token);
      assert.notEqual(refreshed.refresh_token, first.refresh_token);
      assert.notEqual(refreshed.access_token, first.access_token);
      if (refreshed.id_token) assert.equal(refreshed.claims().sub, user.id);
      const info = await client.fetchUserInfo(config, refreshed.access_token, user.id);
      assert.equal(info.sub, user.id);
    });

    it('revocation: a revoked access token is refused', async () => {
      await client.tokenRevocation(config, first.access_token);
      if (kind.confidential) {
        const res = await client.tokenIntrospection(config, first.access_token);
        assert.equal(res.active, false);
      }
      await assert.rejects(client.fetchUserInfo(config, first.access_token, user.id), (err) => {
        assert.ok(err instanceof client.WWWAuthenticateChallengeError, String(err));
        assert.equal(err.status, 401);
        assert.equal(err.cause[0].parameters.error, 'invalid_token');
        return true;
      });
    });

    it('revocation: a revoked refresh token is refused, and so is its grant', async () => {
      await client.tokenRevocation(config, refreshed.refresh_token);
      await assertRefused(client.refreshTokenGrant(config, refreshed.refresh_token), 'invalid_grant');
      if (kind.confidential) {
        const res = await client.tokenIntrospection(config, refreshed.access_token);
        assert.equal(res.active, false, 'access tokens of a revoked refresh-token grant are inactive');
      }
    });

    let sso;
    it('single sign-on: a second authorization with the same cookies skips the form', async () => {
      ({ tokens: sso } = await codeFlow(config, redirectUri, { jar, sso: true }));
      assert.equal(sso.claims().sub, user.id);
      assert.equal(sso.claims().sid, first.claims().sid);
    });

    it('RP-initiated logout returns to the post_logout_redirect_uri with state', async () => {
      const state = client.randomState();
      const endSession = client.buildEndSessionUrl(config, {
        id_token_hint: sso.id_token,
        post_logout_redirect_uri: postLogoutUri,
        state,
      });
      const back = await followRedirects(endSession, { cookieJar: jar, redirectUri: postLogoutUri });
      assert.equal(back.origin + back.pathname, postLogoutUri);
      assert.equal(back.searchParams.get('state'), state);
      // The session's grants ended with it.
      await assertRefused(client.refreshTokenGrant(config, sso.refresh_token), 'invalid_grant');
      // And the next authorization in this browser asks for the password again.
      const stats = {};
      const { tokens: again } = await codeFlow(config, redirectUri, { jar, stats });
      assert.equal(stats.login, 1, 'the sign-in form was shown');
      assert.notEqual(again.claims().sid, sso.claims().sid);
    });

    if (kind.confidential) {
      it('client_credentials grant', async () => {
        const cc = await client.clientCredentialsGrant(config);
        assert.ok(cc.access_token);
        assert.equal(cc.refresh_token, undefined);
        assert.equal(cc.id_token, undefined);
        const res = await client.tokenIntrospection(config, cc.access_token);
        assert.equal(res.active, true);
        assert.equal(res.client_id, reg.client_id);
      });
    }
  });
}

describe('openid-client: an unverified ADMIN user', () => {
  const redirectUri = 'http://127.0.0.1:9/oc-unverified/callback';
  it('gets email_verified false and role ADMIN in the ID token and userinfo', async () => {
    const unverified = await createUser(gh, 'grace@example.com', PASSWORD, ['--unverified', '--role', 'ADMIN']);
    assert.equal(unverified.email_verified, false);
    const reg = await createClient(gh, ['--redirect-uri', redirectUri]);
    const config = await discover(reg.client_id, client.ClientSecretBasic(reg.client_secret));
    const { tokens } = await codeFlow(config, redirectUri, { email: unverified.email });
    const claims = tokens.claims();
    assert.equal(claims.sub, unverified.id);
    assert.equal(claims.email_verified, false);
    assert.equal(claims.role, 'ADMIN');
    const info = await client.fetchUserInfo(config, tokens.access_token, unverified.id);
    assert.equal(info.email_verified, false);
    assert.equal(info.role, 'ADMIN');
  });
});

describe('openid-client: the checks are really on', () => {
  const redirectUri = 'http://127.0.0.1:9/oc-checks/callback';
  it('refuses an authorization response with a foreign iss or a wrong state, then accepts the real one', async () => {
    const reg = await createClient(gh, ['--redirect-uri', redirectUri]);
    const config = await discover(reg.client_id, client.ClientSecretBasic(reg.client_secret));
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await loginViaForm({ authorizationUrl, email: user.email, password: PASSWORD, redirectUri });
    const checks = { pkceCodeVerifier: codeVerifier, expectedState: state };
    const forged = new URL(callback);
    forged.searchParams.set('iss', 'http://127.0.0.1:1');
    // openid-client wraps oauth4webapi's error; the reason is in its cause.
    const because = (re) => (err) => {
      assert.match(err.cause?.message ?? '', re, String(err));
      return true;
    };
    await assert.rejects(client.authorizationCodeGrant(config, forged, checks), because(/"iss"/));
    await assert.rejects(
      client.authorizationCodeGrant(config, callback, { ...checks, expectedState: 'other' }),
      because(/"state"/),
    );
    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    assert.equal(tokens.claims().sub, user.id);
  });
});

describe('openid-client: a third-party client that asks for consent', () => {
  const redirectUri = 'http://127.0.0.1:9/oc-consent/callback';
  it('completes the code flow once the user allows it', async () => {
    const reg = await createClient(gh, ['--redirect-uri', redirectUri, '--require-consent']);
    const config = await discover(reg.client_id, client.ClientSecretBasic(reg.client_secret));
    const stats = {};
    const { tokens } = await codeFlow(config, redirectUri, { jar: new CookieJar(), stats });
    assert.deepEqual(stats, { login: 1, consent: 1, factor: 0, setup: 0, totp: 0, recovery: 0 });
    assert.equal(tokens.claims().sub, user.id);
  });
});

describe('openid-client: second factors: acr, amr, auth_time and step-up with acr_values', () => {
  const ACR_SINGLE = 'urn:gatehouse:acr:single-factor';
  const ACR_MFA = 'urn:gatehouse:acr:mfa';
  const ACR_PHISHING_RESISTANT = 'urn:gatehouse:acr:phishing-resistant';
  const MAX_AGE = 300; // seconds: generous, the point is that auth_time is checked
  const redirectUri = 'http://127.0.0.1:9/oc-mfa/callback';
  const jar = new CookieJar(); // the browser that steps up
  const app = new Authenticator(); // the user's authenticator app, empty until enrolment
  let hedy; // a user of her own: once she has a factor, every sign-in of hers asks for it
  let config;
  let single; // claims of the password-only sign-in
  let stepped; // claims after the step-up

  before(async () => {
    hedy = await createUser(gh, 'hedy@example.com', PASSWORD, ['--name', 'Hedy Lamarr']);
    const reg = await createClient(gh, ['--name', 'openid-client mfa', '--redirect-uri', redirectUri]);
    // require_auth_time: the library refuses an ID token without auth_time.
    config = await discover(reg.client_id, client.ClientSecretBasic(reg.client_secret), { require_auth_time: true });
  });

  it('discovery lists the acr values', () => {
    const supported = config.serverMetadata().acr_values_supported;
    assert.ok(Array.isArray(supported), 'acr_values_supported is a list');
    // On 127.0.0.1 there are no passkeys (an IP address cannot be a WebAuthn
    // RP ID), so phishing-resistant is not offered.
    assert.deepEqual([...supported].sort(), [ACR_MFA, ACR_SINGLE].sort());
    assert.ok(!supported.includes(ACR_PHISHING_RESISTANT));
  });

  it('a password-only sign-in is single-factor: acr, amr ["pwd"], auth_time', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { tokens } = await codeFlow(config, redirectUri, { jar, email: hedy.email, maxAge: MAX_AGE });
    single = tokens.claims();
    assert.equal(single.sub, hedy.id);
    assert.equal(single.acr, ACR_SINGLE);
    assert.deepEqual(single.amr, ['pwd']);
    assert.equal(typeof single.auth_time, 'number');
    // Same machine, same clock; a second of slack for truncation.
    assert.ok(single.auth_time >= before - 1 && single.auth_time <= Math.ceil(Date.now() / 1000) + 1, `auth_time ${single.auth_time}`);
  });

  it('step-up: acr_values=mfa sends the same session to enrol a factor, not to the password form', async () => {
    const stats = {};
    const recoveryCodes = [];
    const { tokens } = await codeFlow(config, redirectUri, {
      jar,
      password: null, // the walk fails if the sign-in form is shown
      authenticator: app,
      recoveryCodes,
      stats,
      maxAge: MAX_AGE,
      params: { acr_values: ACR_MFA },
    });
    assert.deepEqual(stats, { login: 0, consent: 0, factor: 0, setup: 1, totp: 1, recovery: 1 });
    assert.equal(recoveryCodes.length, 10, 'ten recovery codes shown once');
    stepped = tokens.claims();
    assert.equal(stepped.sub, hedy.id);
    assert.equal(stepped.sid, single.sid, 'the same SSO session, stepped up');
    assert.equal(stepped.acr, ACR_MFA);
    assert.deepEqual([...stepped.amr].sort(), ['mfa', 'otp', 'pwd']);
    assert.equal(typeof stepped.auth_time, 'number');
    assert.ok(stepped.auth_time >= single.auth_time, `auth_time ${stepped.auth_time} before the first sign-in's ${single.auth_time}`);
  });

  it('the stepped-up session signs in again without any page, still mfa', async () => {
    const { tokens } = await codeFlow(config, redirectUri, { jar, sso: true, params: { acr_values: ACR_MFA } });
    const claims = tokens.claims();
    assert.equal(claims.sid, single.sid);
    assert.equal(claims.acr, ACR_MFA);
    assert.deepEqual([...claims.amr].sort(), ['mfa', 'otp', 'pwd']);
  });

  it('another browser: password, then the second-factor page; the code used at enrolment is refused', async () => {
    const other = new CookieJar();
    // The enrolment's code, replayed: its time step is used up.
    const replay = { enrolled: true, code: () => app.codeAt(app.lastStep) };
    await assert.rejects(codeFlow(config, redirectUri, { jar: other, email: hedy.email, authenticator: replay }), (err) => {
      assert.equal(err.status, 400, String(err));
      assert.match(err.html, /That code was already used/);
      return true;
    });
    // The same browser, now with the next code: the password is not asked again.
    const stats = {};
    const { tokens } = await codeFlow(config, redirectUri, { jar: other, password: null, authenticator: app, stats, maxAge: MAX_AGE });
    assert.deepEqual(stats, { login: 0, consent: 0, factor: 1, setup: 0, totp: 0, recovery: 0 });
    const claims = tokens.claims();
    assert.equal(claims.sub, hedy.id);
    assert.notEqual(claims.sid, single.sid);
    assert.equal(claims.acr, ACR_MFA, 'a user with a factor always gives it');
    assert.deepEqual([...claims.amr].sort(), ['mfa', 'otp', 'pwd']);
    assert.ok(claims.auth_time >= stepped.auth_time);
  });
});

describe('openid-client: back-channel logout, each logout token verified with jose', () => {
  // Two apps, each with its own back-channel logout endpoint
  // (lib/backchannel.mjs, which checks signature, typ, iss, aud, iat/exp,
  // events, sub/sid, no nonce and jti). Whoever ends a session, each app that
  // took part in it gets exactly one logout token naming it; no other app does.
  const apps = ['A', 'B'].map((name, i) => ({
    name,
    redirectUri: `http://127.0.0.1:9/oc-bcl-${name}/callback`,
    postLogoutUri: `http://127.0.0.1:9/oc-bcl-${name}/signed-out`,
    args: i === 0 ? [] : ['--type', 'spa', '--public'],
    auth: i === 0 ? (c) => client.ClientSecretBasic(c.client_secret) : () => client.None(),
  }));
  const [appA, appB] = apps;

  before(async () => {
    for (const app of apps) {
      app.reg = await createClient(gh, [
        '--name', `back-channel ${app.name}`,
        '--redirect-uri', app.redirectUri,
        '--post-logout-redirect-uri', app.postLogoutUri,
        ...app.args,
      ]);
      app.config = await discover(app.reg.client_id, app.auth(app.reg));
      // The receiver checks the audience, so it needs the client_id; the
      // client needs the receiver's URL: register, then point it there.
      app.receiver = await startLogoutReceiver(app.config);
      await gh.cli(['clients', 'update', app.reg.client_id, '--backchannel-logout-uri', app.receiver.url, '--backchannel-logout-session-required']);
    }
  });
  after(() => Promise.all(apps.map((app) => app.receiver?.close())));

  /** The logout token app received names the session and user of idClaims (the app's own ID token). */
  function assertLogoutTokenFor(app, logout, idClaims) {
    assert.equal(logout.iss, gh.issuer);
    assert.deepEqual([logout.aud].flat(), [app.reg.client_id]);
    assert.equal(logout.sub, idClaims.sub);
    assert.equal(logout.sub, user.id);
    assert.equal(logout.sid, idClaims.sid);
    assert.deepEqual(logout.events, { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    assert.ok(!('nonce' in logout));
  }

  /**
   * Exactly one logout token for session sid reached app: the outbox records
   * one delivery for it, delivered (so none is retried), and the receiver
   * verified one token for it and refused none.
   */
  async function assertDeliveredOnce(app, sid) {
    const list = await settledDeliveries(gh, app.reg.client_id);
    const forSession = list.filter((d) => d.session_id === sid);
    assert.equal(forSession.length, 1, JSON.stringify(list));
    assert.equal(forSession[0].state, 'delivered', JSON.stringify(forSession[0]));
    assert.equal(forSession[0].last_status, 200);
    assert.equal(app.receiver.received.filter((c) => c.sid === sid).length, 1);
    assert.deepEqual(app.receiver.refused, []);
  }

  it('discovery says back-channel logout with sid is supported', () => {
    const meta = appA.config.serverMetadata();
    assert.equal(meta.backchannel_logout_supported, true);
    assert.equal(meta.backchannel_logout_session_supported, true);
  });

  it('RP-initiated logout with id_token_hint: both apps of the session get one logout token for it', async () => {
    const jar = new CookieJar();
    const { tokens: a } = await codeFlow(appA.config, appA.redirectUri, { jar });
    const { tokens: b } = await codeFlow(appB.config, appB.redirectUri, { jar, sso: true });
    const idA = a.claims();
    const idB = b.claims();
    assert.equal(idB.sid, idA.sid, 'one SSO session');

    const state = client.randomState();
    const endSession = client.buildEndSessionUrl(appA.config, {
      id_token_hint: a.id_token,
      post_logout_redirect_uri: appA.postLogoutUri,
      state,
    });
    const back = await followRedirects(endSession, { cookieJar: jar, redirectUri: appA.postLogoutUri });
    assert.equal(back.searchParams.get('state'), state);

    const [logoutA, logoutB] = await Promise.all([appA.receiver.next(), appB.receiver.next()]);
    assertLogoutTokenFor(appA, logoutA, idA);
    assertLogoutTokenFor(appB, logoutB, idB);
    assert.notEqual(logoutA.jti, logoutB.jti);
    await assertDeliveredOnce(appA, idA.sid);
    await assertDeliveredOnce(appB, idB.sid);
  });

  it('the sign-out page (end_session without a hint): only the app of that session is told', async () => {
    const jar = new CookieJar();
    const { tokens: a } = await codeFlow(appA.config, appA.redirectUri, { jar });
    const idA = a.claims();
    const state = client.randomState();
    const endSession = client.buildEndSessionUrl(appA.config, { post_logout_redirect_uri: appA.postLogoutUri, state });
    const back = await signOutViaForm(endSession, { cookieJar: jar, redirectUri: appA.postLogoutUri });
    assert.equal(back.searchParams.get('state'), state);

    assertLogoutTokenFor(appA, await appA.receiver.next(), idA);
    await assertDeliveredOnce(appA, idA.sid);
    // B took no part in this session: the sign-out queued nothing for it.
    const forB = await gh.cli(['logout-deliveries', 'list', '--json', '--client', appB.reg.client_id]);
    assert.deepEqual(forB.map((d) => d.session_id), [appB.receiver.received[0].sid]);
    assert.equal(appB.receiver.received.length, 1);
  });

  it('the receiver is strict: an ID token of the same issuer and audience is refused', async () => {
    const receiver = await startLogoutReceiver(appA.config);
    try {
      const { tokens } = await codeFlow(appA.config, appA.redirectUri, { jar: new CookieJar() });
      const res = await fetch(receiver.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: tokens.id_token }),
      });
      assert.equal(res.status, 400);
      await assert.rejects(receiver.next(), /"typ"/);
      assert.deepEqual(receiver.received, []);
    } finally {
      await receiver.close();
    }
  });
});
