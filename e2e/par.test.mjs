// Pushed authorization requests (RFC 9126) with oauth4webapi v3's own PAR
// support against a real Gatehouse: the library pushes the request, the
// browser carries only client_id and request_uri, and the sign-in goes
// through the real pages. As in oauth4webapi.test.mjs, the one switch is
// [allowInsecureRequests] for the http://127.0.0.1 test server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as oauth from 'oauth4webapi';

import { CookieJar, UnexpectedPageError, createClient, createUser, followRedirects, loginViaForm, startGatehouse } from './lib/gatehouse.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const http = { [oauth.allowInsecureRequests]: true };

let gh;
let user;
let as;
before(async () => {
  gh = await startGatehouse();
  user = await createUser(gh, 'par@example.com', PASSWORD);
  const issuer = new URL(gh.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...http }));
});
after(() => gh?.stop());

/** Pushes a code + PKCE request; returns what the rest of the flow needs. */
async function push(c, auth, redirectUri) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const params = {
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  const res = await oauth.pushedAuthorizationRequest(as, c, auth, params, http);
  const { request_uri: requestUri, expires_in: expiresIn } = await oauth.processPushedAuthorizationResponse(as, c, res);
  const authorizationUrl = new URL(as.authorization_endpoint);
  authorizationUrl.searchParams.set('client_id', c.client_id);
  authorizationUrl.searchParams.set('request_uri', requestUri);
  return { authorizationUrl, codeVerifier, state, nonce, requestUri, expiresIn };
}

async function redeem(c, auth, redirectUri, callback, pushed) {
  const params = oauth.validateAuthResponse(as, c, callback, pushed.state); // iss (RFC 9207) and state
  const res = await oauth.authorizationCodeGrantRequest(as, c, auth, params, redirectUri, pushed.codeVerifier, http);
  const tokens = await oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: pushed.nonce, requireIdToken: true });
  return oauth.getValidatedIdTokenClaims(tokens);
}

describe('oauth4webapi: pushed authorization requests', () => {
  it('a confidential client pushes, signs in through the pages, and the request_uri works once', async () => {
    assert.equal(as.pushed_authorization_request_endpoint, `${gh.issuer}/oauth/par`);
    assert.equal(as.require_pushed_authorization_requests, false);
    const redirectUri = 'http://127.0.0.1:9/par-basic/callback';
    const reg = await createClient(gh, ['--name', 'PAR app', '--redirect-uri', redirectUri]);
    const c = { client_id: reg.client_id };
    const auth = oauth.ClientSecretBasic(reg.client_secret);

    const pushed = await push(c, auth, redirectUri);
    assert.match(pushed.requestUri, /^urn:ietf:params:oauth:request_uri:/);
    assert.equal(pushed.expiresIn, 60);
    const callback = await loginViaForm({
      authorizationUrl: pushed.authorizationUrl,
      email: user.email,
      password: PASSWORD,
      cookieJar: new CookieJar(),
      redirectUri,
    });
    const claims = await redeem(c, auth, redirectUri, callback, pushed);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.email, 'par@example.com');

    // Used up: the same authorization URL now ends on an error page.
    await assert.rejects(followRedirects(pushed.authorizationUrl, { redirectUri }), (err) => {
      assert.ok(err instanceof UnexpectedPageError, `expected an error page, got ${err}`);
      assert.equal(err.status, 400);
      return true;
    });
  });

  it('a public client that requires PAR is refused a plain request and signs in with a pushed one', async () => {
    const redirectUri = 'http://127.0.0.1:9/par-spa/callback';
    const reg = await createClient(gh, ['--name', 'PAR SPA', '--type', 'spa', '--public', '--require-par', '--redirect-uri', redirectUri]);
    const c = { client_id: reg.client_id };
    const auth = oauth.None();

    const plain = new URL(as.authorization_endpoint);
    const state = oauth.generateRandomState();
    for (const [k, v] of Object.entries({
      client_id: c.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
      state,
    })) {
      plain.searchParams.set(k, v);
    }
    const refused = await followRedirects(plain, { redirectUri });
    assert.throws(
      () => oauth.validateAuthResponse(as, c, refused, state),
      (err) => {
        assert.ok(err instanceof oauth.AuthorizationResponseError, `got ${err}`);
        assert.equal(err.error, 'invalid_request');
        assert.equal(err.error_description, 'pushed authorization request required');
        return true;
      },
    );

    const pushed = await push(c, auth, redirectUri);
    const callback = await loginViaForm({
      authorizationUrl: pushed.authorizationUrl,
      email: user.email,
      password: PASSWORD,
      cookieJar: new CookieJar(),
      redirectUri,
    });
    const claims = await redeem(c, auth, redirectUri, callback, pushed);
    assert.equal(claims.sub, user.id);
  });
});
