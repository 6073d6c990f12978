// A real OpenID Connect provider (npm oidc-provider) for the portal's OIDC sign-in tests. Never for production.
//
//   node provider.js [--port N] [--issuer URL] [--redirect-uri URI ...] [--clock-skew-seconds N] [--test-faults]
//
// One confidential client (client_secret_basic), the library's development login and consent pages
// (devInteractions: any password), and a few accounts with email, name and groups claims. When the
// server listens it prints one JSON line: {"issuer": ..., "port": ...}.
//
// Clock skew: --clock-skew-seconds (or CLOCK_SKEW_SECONDS) moves this provider's whole clock, as an IdP
// whose clock is wrong: every iat/exp it signs, and its own checks, use the shifted time.
// --test-faults adds POST /__test__/faults (JSON) so one running provider can change at run time:
//   {"clock_skew_seconds": N}            the clock shift above
//   {"id_token_ttl": N}                  the lifetime of the ID tokens it issues (default 3600 s)
//   {"id_token": {"iss": "...", "aud": "..."}}   the ID token of the token responses is re-signed with
//                                        the provider's own key after these changes
//   {"id_token": {"tamper": true}}       the ID token's payload is changed and its signature kept
// and DELETE /__test__/faults to reset. The login and consent round trip stays the provider's own.
import http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import { Provider } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT || '0' },
    host: { type: 'string', default: process.env.HOST || '127.0.0.1' },
    issuer: { type: 'string', default: process.env.ISSUER || '' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'client-id': { type: 'string', default: process.env.CLIENT_ID || 'portal' },
    'client-secret': { type: 'string', default: process.env.CLIENT_SECRET || 'portal-test-secret' },
    'clock-skew-seconds': { type: 'string', default: process.env.CLOCK_SKEW_SECONDS || '0' },
    'test-faults': { type: 'boolean', default: process.env.TEST_FAULTS === '1' },
  },
});

// The shifted clock. oidc-provider takes every timestamp from Date.now() (helpers/epoch_time.js).
const realNow = Date.now.bind(Date);
let skewMs = Number(args['clock-skew-seconds']) * 1000;
Date.now = () => realNow() + skewMs;

const ACCOUNTS = {
  alice: {
    email: 'alice@corp.example', email_verified: true, name: 'Alice Wong', given_name: 'Alice',
    family_name: 'Wong', preferred_username: 'alice', groups: ['approvers', 'finance'],
  },
  'li.si': {
    email: 'li.si@corp.example', email_verified: true, name: '李四', preferred_username: 'li.si',
    groups: ['purchasing'],
  },
  // Claims an address someone else owns, unverified: must never be linked to that account.
  mallory: {
    email: 'li.si@corp.example', email_verified: false, name: 'Mallory', preferred_username: 'mallory',
    groups: [],
  },
  bob: {
    email: 'bob@corp.example', email_verified: true, name: 'Bob Chen', given_name: 'Bob', family_name: 'Chen',
    preferred_username: 'bob', groups: ['warehouse'],
  },
};

const server = http.createServer();
await new Promise((resolve) => { server.listen(Number(args.port), args.host, resolve); });
const { port } = server.address();
const issuer = args.issuer || `http://${args.host}:${port}`;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };

let faults = {};

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['oidc-test-provider-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  ttl: {
    AccessToken: 3600, AuthorizationCode: 600, Interaction: 3600, Session: 86400, Grant: 86400,
    IdToken: () => Number(faults.id_token_ttl ?? 3600),
  },
  async findAccount(_ctx, id) {
    const claims = ACCOUNTS[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});

async function rewriteIdToken(idToken) {
  const spec = faults.id_token;
  if (!spec) return idToken;
  const payload = jose.decodeJwt(idToken);
  if (spec.tamper) {
    // Another person's subject in the payload, the original signature kept.
    const [header, , signature] = idToken.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'alice', email: 'alice@corp.example' }));
    return [header, forged.toString('base64url'), signature].join('.');
  }
  const changed = { ...payload };
  if (spec.iss !== undefined) changed.iss = spec.iss;
  if (spec.aud !== undefined) changed.aud = spec.aud;
  return new jose.SignJWT(changed).setProtectedHeader(jose.decodeProtectedHeader(idToken)).sign(privateKey);
}

if (args['test-faults']) {
  provider.use(async (ctx, next) => {
    if (ctx.path !== '/__test__/faults') {
      await next();
      if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
        ctx.body = { ...ctx.body, id_token: await rewriteIdToken(ctx.body.id_token) };
      }
      return;
    }
    if (ctx.method === 'DELETE') {
      faults = {};
      skewMs = 0;
    } else if (ctx.method === 'POST') {
      const chunks = [];
      for await (const chunk of ctx.req) chunks.push(chunk);
      faults = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      skewMs = Number(faults.clock_skew_seconds || 0) * 1000;
    }
    ctx.body = { faults, clock_skew_seconds: skewMs / 1000, now: Math.floor(Date.now() / 1000) };
  });
}

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
