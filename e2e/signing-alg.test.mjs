// Per-client signing algorithms (id_token_signed_response_alg) with
// openid-client v6 and jose: a client registered for ES256 or EdDSA tells
// openid-client so, which then accepts ID tokens in that algorithm only
// (with every check left on, the signature against the JWKS included, and
// at_hash by the algorithm's hash: SHA-512 for EdDSA); its JWT access tokens
// and logout tokens verify with jose against the same JWKS in the same
// algorithm.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import * as jose from 'jose';
import * as client from 'openid-client';

import { CookieJar, createClient, createUser, followRedirects, loginViaForm, startGatehouse } from './lib/gatehouse.mjs';
import { startLogoutReceiver } from './lib/backchannel.mjs';

const PASSWORD = 'Choose-a-Passw0rd';

let gh;
let user;
before(async () => {
  gh = await startGatehouse();
  user = await createUser(gh, 'sig@example.com', PASSWORD);
});
after(() => gh?.stop());

/** at_hash as OpenID Connect defines it for alg: the left half of the access token's hash. */
async function atHashFor(alg, token) {
  const hash = alg === 'EdDSA' ? 'SHA-512' : 'SHA-256';
  const digest = new Uint8Array(await crypto.subtle.digest(hash, new TextEncoder().encode(token)));
  return Buffer.from(digest.slice(0, digest.length / 2)).toString('base64url');
}

it('discovery lists every algorithm, the default first, and JWKS has a key of each', async () => {
  const meta = await (await fetch(`${gh.issuer}/.well-known/openid-configuration`)).json();
  assert.deepEqual(meta.id_token_signing_alg_values_supported, ['RS256', 'ES256', 'EdDSA']);
  const { keys } = await (await fetch(meta.jwks_uri)).json();
  for (const alg of meta.id_token_signing_alg_values_supported) {
    assert.equal(keys.filter((k) => k.alg === alg).length, 2, `an active and a next ${alg} key`);
  }
});

for (const alg of ['ES256', 'EdDSA']) {
  describe(`openid-client with id_token_signed_response_alg ${alg}`, () => {
    const redirectUri = `http://127.0.0.1:9/sig-${alg}/callback`;
    const postLogoutUri = `http://127.0.0.1:9/sig-${alg}/signed-out`;
    const jar = new CookieJar();
    let reg;
    let config;
    let receiver;
    let tokens;

    before(async () => {
      reg = await createClient(gh, [
        '--name', `${alg} app`, '--redirect-uri', redirectUri, '--post-logout-redirect-uri', postLogoutUri,
        '--access-token', 'jwt', '--id-token-signing-alg', alg,
      ]);
      config = await client.discovery(
        new URL(gh.issuer),
        reg.client_id,
        { id_token_signed_response_alg: alg }, // what the client registered
        client.ClientSecretBasic(reg.client_secret),
        { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
      );
      receiver = await startLogoutReceiver(config, { algorithms: [alg] }); // only the client's
      await gh.cli(['clients', 'update', reg.client_id, '--backchannel-logout-uri', receiver.url]);
    });
    after(() => receiver?.close());

    it(`signs in: the ID token is ${alg} and verifies`, async () => {
      const codeVerifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const authorizationUrl = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email offline_access',
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      const callback = await loginViaForm({ authorizationUrl, email: user.email, password: PASSWORD, cookieJar: jar, redirectUri });
      tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      assert.equal(jose.decodeProtectedHeader(tokens.id_token).alg, alg);
      const claims = tokens.claims();
      assert.equal(claims.sub, user.id);
      assert.equal(claims.at_hash, await atHashFor(alg, tokens.access_token));
    });

    it(`the JWT access token is ${alg} and verifies with jose`, async () => {
      const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
      const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
        issuer: gh.issuer,
        typ: 'at+jwt',
        algorithms: [alg],
      });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(payload.client_id, reg.client_id);
      const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
      assert.equal(info.sub, user.id);
    });

    it(`a refresh returns an ${alg} ID token`, async () => {
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert.equal(jose.decodeProtectedHeader(refreshed.id_token).alg, alg);
      assert.equal(refreshed.claims().sub, user.id);
    });

    it(`RP-initiated logout with the ${alg} ID token as hint sends an ${alg} logout token`, async () => {
      const sid = tokens.claims().sid;
      // A hint Gatehouse verifies goes straight back to the app, with no
      // confirmation page.
      const endSession = client.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: postLogoutUri,
        state: 'bye',
      });
      const back = await followRedirects(endSession, { cookieJar: jar, redirectUri: postLogoutUri });
      assert.equal(back.origin + back.pathname, postLogoutUri);
      assert.equal(back.searchParams.get('state'), 'bye');
      const logout = await receiver.next();
      assert.equal(logout.sid, sid);
      assert.equal(receiver.refused.length, 0);
    });
  });
}
