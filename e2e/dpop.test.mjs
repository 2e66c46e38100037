// DPoP (RFC 9449) with oauth4webapi's DPoP() handle against a real Gatehouse
// that requires server nonces (GATEHOUSE_DPOP_NONCE): a public client's
// code flow bound to its key, the nonce retry the library leaves to its
// caller, userinfo with the bound token, and a refresh with the same key.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as oauth from 'oauth4webapi';

import { CookieJar, createClient, createUser, loginViaForm, startGatehouse } from './lib/gatehouse.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const http = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'http://127.0.0.1:9/dpop/callback';

let gh;
let user;
let as;
let c;
before(async () => {
  gh = await startGatehouse({ env: { GATEHOUSE_DPOP_NONCE: 'true' } });
  user = await createUser(gh, 'dpop@example.com', PASSWORD);
  const reg = await createClient(gh, ['--name', 'DPoP SPA', '--type', 'spa', '--public', '--redirect-uri', redirectUri]);
  c = { client_id: reg.client_id };
  const issuer = new URL(gh.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...http }));
});
after(() => gh?.stop());

// withNonceRetry runs a request once more when the server asks for its
// nonce, as RFC 9449 §8 and oauth4webapi's documentation describe; the
// handle has cached the nonce from the refusal's DPoP-Nonce header.
async function withNonceRetry(fn) {
  try {
    return { retried: false, result: await fn() };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { retried: true, result: await fn() };
  }
}

describe('oauth4webapi: DPoP with server nonces', () => {
  const key = oauth.generateKeyPair('ES256', { extractable: true });
  let dpop;
  let tokens;

  it('discovery lists the DPoP algorithms', () => {
    assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'));
  });

  it('code flow: the first token request is refused with use_dpop_nonce, the retry is bound', async () => {
    dpop = oauth.DPoP(c, await key);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const authorizationUrl = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({
      client_id: c.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid email offline_access',
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      dpop_jkt: await dpop.calculateThumbprint(),
    })) {
      authorizationUrl.searchParams.set(k, v);
    }
    const callback = await loginViaForm({ authorizationUrl, email: user.email, password: PASSWORD, cookieJar: new CookieJar(), redirectUri });
    const params = oauth.validateAuthResponse(as, c, callback, state);
    const { retried, result } = await withNonceRetry(async () => {
      const res = await oauth.authorizationCodeGrantRequest(as, c, oauth.None(), params, redirectUri, codeVerifier, { DPoP: dpop, ...http });
      return oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: nonce, requireIdToken: true });
    });
    assert.equal(retried, true, 'the server asked for its nonce first');
    tokens = result;
    assert.equal(tokens.token_type, 'dpop');
    assert.ok(tokens.refresh_token);
  });

  it('userinfo with the bound token and a proof; as a bearer token it is refused', async () => {
    const { result: info } = await withNonceRetry(async () => {
      const res = await oauth.userInfoRequest(as, c, tokens.access_token, { DPoP: dpop, ...http });
      return oauth.processUserInfoResponse(as, c, user.id, res);
    });
    assert.equal(info.sub, user.id);
    assert.equal(info.email, 'dpop@example.com');

    const res = await oauth.userInfoRequest(as, c, tokens.access_token, http);
    await assert.rejects(oauth.processUserInfoResponse(as, c, user.id, res), (err) => {
      assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err));
      assert.equal(err.cause[0].scheme, 'dpop');
      assert.equal(err.cause[0].parameters.error, 'invalid_token');
      return true;
    });
  });

  it('refresh: with the same key it works; with another key it is refused', async () => {
    const stranger = oauth.DPoP(c, await oauth.generateKeyPair('ES256', { extractable: true }));
    await assert.rejects(
      withNonceRetry(async () => {
        const res = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { DPoP: stranger, ...http });
        return oauth.processRefreshTokenResponse(as, c, res);
      }),
      (err) => {
        assert.ok(err instanceof oauth.ResponseBodyError, String(err));
        assert.equal(err.error, 'invalid_dpop_proof');
        return true;
      },
    );
    const { result: refreshed } = await withNonceRetry(async () => {
      const res = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { DPoP: dpop, ...http });
      return oauth.processRefreshTokenResponse(as, c, res);
    });
    assert.equal(refreshed.token_type, 'dpop');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  });
});
