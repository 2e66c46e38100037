// Dynamic client registration (RFC 7591) with openid-client v6: a tool given
// an initial access token registers a client with the library's
// dynamicClientRegistration() and signs a user in with it (the registered
// client is a third party: the user is asked for consent).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import * as client from 'openid-client';

import { CookieJar, createUser, loginViaForm, startGatehouse } from './lib/gatehouse.mjs';

const PASSWORD = 'Choose-a-Passw0rd';

let gh;
before(async () => {
  gh = await startGatehouse({ env: { GATEHOUSE_CLIENT_REGISTRATION: 'token' } });
  await createUser(gh, 'reg@example.com', PASSWORD);
});
after(() => gh?.stop());

it('registers a client with an initial access token and signs in with it', async () => {
  const { token } = await gh.cli(['clients', 'registration-token', 'create', '--uses', '1', '--json']);
  const redirectUri = 'http://127.0.0.1:9/dcr/callback';
  const config = await client.dynamicClientRegistration(
    new URL(gh.issuer),
    {
      client_name: 'Registered by openid-client',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post', // the library's default for a secret
    },
    undefined,
    { initialAccessToken: token, execute: [client.allowInsecureRequests] },
  );
  const registered = config.clientMetadata();
  assert.ok(registered.client_secret, 'a confidential client gets a secret');
  assert.equal(registered.client_secret_expires_at, 0);
  assert.equal(registered.registration_client_uri, `${gh.issuer}/oauth/register/${registered.client_id}`);
  assert.equal(config.serverMetadata().registration_endpoint, `${gh.issuer}/oauth/register`);

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const stats = { login: 0, consent: 0 };
  const callback = await loginViaForm({
    authorizationUrl,
    email: 'reg@example.com',
    password: PASSWORD,
    cookieJar: new CookieJar(),
    redirectUri,
    stats,
  });
  assert.equal(stats.consent, 1, 'a registered client is a third party: consent is asked');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.claims().email, 'reg@example.com');

  // The initial access token had one use.
  await assert.rejects(
    client.dynamicClientRegistration(
      new URL(gh.issuer),
      { redirect_uris: [redirectUri] },
      undefined,
      { initialAccessToken: token, execute: [client.allowInsecureRequests] },
    ),
    (err) => {
      assert.ok(err instanceof client.WWWAuthenticateChallengeError, `expected a Bearer challenge, got ${err}`);
      assert.equal(err.status, 401);
      assert.equal(err.cause[0].parameters.error, 'invalid_token');
      return true;
    },
  );
});
