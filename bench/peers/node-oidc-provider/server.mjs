// node-oidc-provider (panva), set up like Gatehouse for the side-by-side
// benchmark (bench/compare.sh): in memory (its default adapter), one
// confidential client, one account, its own dev sign-in pages, RS256 with a
// key generated at start, refresh token rotation on, and a resource server
// whose client_credentials access tokens are RS256 JWTs.
//
//   PORT=9000 CLIENT_SECRET=… REDIRECT_URI=http://127.0.0.1:9009/cb node server.mjs
//
// Settings come from the environment (all optional except PORT):
//   PORT           port on 127.0.0.1 (loopback only)
//   CLIENT_ID      default "bench"
//   CLIENT_SECRET  default "bench-secret" (client_secret_basic)
//   REDIRECT_URI   default http://127.0.0.1:9009/cb
//   RESOURCE       default urn:gatehouse-bench:api — a client_credentials request naming it
//                  gets a JWT access token (scope "api"); without it, an opaque one
//
// It prints "listening <issuer>" on stdout once it accepts connections.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!(port > 0 && port < 65536)) {
  console.error('PORT must be a port number');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID || 'bench';
const clientSecret = process.env.CLIENT_SECRET || 'bench-secret';
const redirectUri = process.env.REDIRECT_URI || 'http://127.0.0.1:9009/cb';
const resource = process.env.RESOURCE || 'urn:gatehouse-bench:api';

// The dev sign-in accepts any login and password; every login is this user.
const claims = { email: 'bench@example.com', email_verified: true, name: 'Bench User' };

// RS256, as Gatehouse's default: a 2048-bit key made at start.
const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      client_name: 'Bench app',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [{ ...jwk, kid: 'bench-rs256', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Said explicitly (the defaults log a notice each); a refresh token
  // lives as long as Gatehouse's default (30 days).
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 3600,
    Grant: 30 * 24 * 3600,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 30 * 24 * 3600,
    Session: 30 * 24 * 3600,
  },
  // Gatehouse rotates every refresh token; so does this.
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Without a resource parameter: no resource, an opaque token (as
      // Gatehouse's default client); naming it: a JWT for that API.
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) throw new Provider.errors.InvalidTarget();
        return { scope: 'api', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  // A first-party app, as Gatehouse's clients without --require-consent:
  // the scopes it asks for are granted without a consent page
  // (oidc-provider's documented recipe). offline_access still needs
  // prompt=consent, oidc-provider's rule, so refresh tokens take one
  // consent page at sign-in.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, sub) {
    return { accountId: sub, claims: async () => ({ sub, ...claims }) };
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections(); // keep-alive connections would hold close() open
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
