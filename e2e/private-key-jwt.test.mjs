// private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9) with
// oauth4webapi's PrivateKeyJwt: the library signs the assertions (ES256,
// with a kid), Gatehouse verifies them against the JWKS the client was
// registered with (`clients create --auth-method private_key_jwt
// --jwks-file`). One client, two grants: client_credentials, and a code
// exchange after a sign-in through the real form.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import * as oauth from 'oauth4webapi';

import { CookieJar, createClient, createUser, loginViaForm, startGatehouse } from './lib/gatehouse.mjs';

const PASSWORD = 'Choose-a-Passw0rd';
const http = { [oauth.allowInsecureRequests]: true };
const redirectUri = 'http://127.0.0.1:9/pkjwt/callback';

describe('oauth4webapi: private_key_jwt', () => {
  let gh, as, c, auth, user, dir;

  before(async () => {
    gh = await startGatehouse();
    user = await createUser(gh, 'pkjwt@example.com', PASSWORD);
    const issuer = new URL(gh.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...http }));

    const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'e2e-1', use: 'sig', alg: 'ES256' };
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-jwks-'));
    const jwksFile = join(dir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
    const reg = await createClient(gh, [
      '--auth-method', 'private_key_jwt',
      '--jwks-file', jwksFile,
      '--grant-types', 'authorization_code,refresh_token,client_credentials',
      '--redirect-uri', redirectUri,
    ]);
    assert.equal(reg.client_secret, undefined, 'a key-based client has no secret');
    c = { client_id: reg.client_id, token_endpoint_auth_method: 'private_key_jwt' };
    auth = oauth.PrivateKeyJwt({ key: privateKey, kid: 'e2e-1' });
  });
  after(async () => {
    await gh?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is advertised in discovery', () => {
    assert.ok(as.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(as.token_endpoint_auth_signing_alg_values_supported.includes('ES256'));
  });

  it('client_credentials, then introspection, each with a fresh assertion', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), http);
    const tokens = await oauth.processClientCredentialsResponse(as, c, res);
    assert.ok(tokens.access_token);
    const intro = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, tokens.access_token, http));
    assert.equal(intro.active, true);
    assert.equal(intro.client_id, c.client_id);
  });

  it('code exchange after a sign-in', async () => {
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: c.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    }).toString();
    const callback = await loginViaForm({ authorizationUrl: url, email: user.email, password: PASSWORD, cookieJar: new CookieJar(), redirectUri });
    const params = oauth.validateAuthResponse(as, c, callback, state);
    const res = await oauth.authorizationCodeGrantRequest(as, c, auth, params, redirectUri, codeVerifier, http);
    const tokens = await oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: nonce, requireIdToken: true });
    assert.equal(oauth.getValidatedIdTokenClaims(tokens).email, user.email);
  });
});
