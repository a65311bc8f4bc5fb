// The node oidc-provider of the end-to-end tests (e2e/harness/oidcprovider.go starts it):
//
//   OIDC_PROVIDER_DIR=<folder of `npm ci`> node server.mjs <config.json>
//
// The config file, written by the harness, says where to listen and what to register:
//   issuer           the issuer: the URL of the http listener, or of the https one
//   http             host:port of the plain HTTP listener
//   https            host:port of an HTTPS listener
//   mtls             host:port of another HTTPS listener, which mtls_endpoint_aliases names
//   tls              PEM files: cert and key of both HTTPS listeners, ca they trust for
//                    client certificates; both ask every client for one
//   clients          oidc-provider client metadata; grant_types client_credentials and no
//                    redirect URIs unless a client says otherwise
//                    (tls_client_certificate_bound_access_tokens: true binds a client's
//                    tokens to the certificate of its token request, RFC 8705 §3)
//   resources        resource indicator -> the scopes its access tokens may carry
//   defaultResource  the resource of a token request that names none
//   accessTokenTTL   seconds an access token lives
//   extraClaims      client_id -> members added to the introspection answer of every
//                    access token issued to that client (extraTokenClaims); optional
//
// Sender-constrained tokens: a token request with a DPoP proof header gets a DPoP-bound
// token (RFC 9449 §5), whose introspection answer carries cnf.jkt, on any listener and for
// any client; a client registered with tls_client_certificate_bound_access_tokens gets,
// over an HTTPS listener with a client certificate, a token whose answer carries
// cnf["x5t#S256"] (RFC 8705 §3.1). The token endpoint never asks for a DPoP nonce.
//
// Every listener serves all of oidc-provider's routes; the URLs in its discovery document
// are those of the listener it was read from (oidc-provider builds them from the request),
// but the mtls_endpoint_aliases, and the issuer. Besides, on every listener:
//   GET  /_test/calls   {"http": {path: n}, "https": {...}, "mtls": {...}}: the requests each
//                       listener got per path, /_test/ ones left out
//   POST /_test/rotate  new signing keys under new kids (rsa-N, ec-N): the provider is built
//                       again with them, with the same issuer, clients, ports and tokens
//                       (the store below outlives it), and from then on signs with them
//                       and publishes only them at /jwks
//
// It prints "ready" once every listener listens, and exits on SIGTERM.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// oidc-provider is ESM, and an ESM import of a bare name resolves from the importing
// file's folder upwards, never from NODE_PATH or the working directory. It is installed in
// the cache, not beside this file, so Node's resolution is run from the install folder
// (createRequire finds its node_modules/oidc-provider and the package's main file) and the
// module is loaded from that absolute file URL.
const installDir = process.env.OIDC_PROVIDER_DIR;
if (!installDir) {
  console.error('OIDC_PROVIDER_DIR is not set: it names the folder where `npm ci` installed oidc-provider');
  process.exit(2);
}
const entry = createRequire(join(installDir, 'package.json')).resolve('oidc-provider');
const { default: Provider, errors } = await import(pathToFileURL(entry).href);

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// The paths are oidc-provider's defaults, spelled out: the harness and the tests use them.
const routes = {
  jwks: '/jwks',
  token: '/token',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
};

const clients = config.clients.map((client) => ({
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  ...client,
}));

// RFC 8705 §5: where a client with a certificate finds the endpoints that take it.
// oidc-provider does not publish mtls_endpoint_aliases itself; its `discovery` option adds
// members to the discovery document, and this is how a deployment announces the aliases.
const mtlsAliases = Object.fromEntries(['token', 'introspection', 'revocation']
  .map((name) => [`${name}_endpoint`, `https://${config.mtls}${routes[name]}`]));

// The TLS socket's verified (or self-signed) client certificate, if one was presented.
function peerCertificate(ctx) {
  return ctx.socket.getPeerX509Certificate?.() ?? undefined;
}

// What oidc-provider stores (tokens, replay records of client assertions), in one Map for
// every provider this process builds. Its own memory adapter keeps a store per provider,
// which would forget every token at a key rotation. Only what the client credentials,
// introspection and revocation endpoints use is here: no grants, sessions or user codes.
const store = new Map();

class Adapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const until = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { payload, until });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (entry && entry.until <= Date.now()) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry?.payload;
  }

  async consume(id) {
    const payload = await this.find(id);
    if (payload) {
      payload.consumed = Math.floor(Date.now() / 1000);
    }
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId() {}

  async findByUid() {
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }
}

let generation = 0;

function signingKeys() {
  generation += 1;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  // No alg on the RSA key: it signs both RS256 and PS256.
  return [{ ...rsa, kid: `rsa-${generation}`, use: 'sig' }, { ...ec, kid: `ec-${generation}`, use: 'sig' }];
}

const cookieKeys = [randomBytes(32).toString('base64url')];

function newProvider() {
  return new Provider(config.issuer, {
    adapter: Adapter,
    clients,
    jwks: { keys: signingKeys() },
    cookies: { keys: cookieKeys },
    routes,
    // The scopes the resource servers' tokens may carry; oidc-provider refuses others.
    scopes: [...new Set(Object.values(config.resources).flatMap((scope) => scope.split(' ')))],
    discovery: { mtls_endpoint_aliases: mtlsAliases },
    // Stored with an opaque token and spread into its introspection answer at the top level
    // (before active, client_id, exp, iss, aud, scope..., which it cannot override; a sub of
    // its own stays, since a client_credentials token has no account).
    extraTokenClaims: (ctx, token) => structuredClone(config.extraClaims?.[token.clientId]),
    clientAuthMethods: [
      'client_secret_basic',
      'client_secret_post',
      'client_secret_jwt',
      'private_key_jwt',
      'tls_client_auth',
      'self_signed_tls_client_auth',
      'none',
    ],
    enabledJWA: {
      clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256'],
      introspectionSigningAlgValues: ['RS256', 'PS256', 'ES256'],
      // DPoP proofs at the token endpoint: a token can be bound to a key of each kind the
      // middleware verifies (oidc-provider's default is ES256 and EdDSA only).
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'PS256', 'RS256'],
    },
    features: {
      devInteractions: { enabled: false },
      // On by default in oidc-provider 9; spelled out because the tests depend on it. No
      // nonceSecret and requireNonce false: the token endpoint never answers
      // use_dpop_nonce, so a client's first proof gets its token (RFC 9449 §8 leaves
      // nonces to the server). Replays of a proof at the token endpoint are refused.
      dPoP: { enabled: true, requireNonce: () => false, allowReplay: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.defaultResource,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, indicator) {
          const scope = config.resources[indicator];
          if (scope === undefined) {
            throw new errors.InvalidTarget();
          }
          return { scope, accessTokenFormat: 'opaque', accessTokenTTL: config.accessTokenTTL };
        },
      },
      mTLS: {
        enabled: true,
        // RFC 8705 §3: for clients registered with
        // tls_client_certificate_bound_access_tokens, the token is bound to the
        // certificate of the token request (getCertificate), x5t#S256 in its answer.
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: peerCertificate,
        // tls_client_auth: the certificate chains to the https listener's ca.
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        certificateSubjectMatches(ctx, property, expected) {
          const cert = peerCertificate(ctx);
          switch (property) {
            case 'tls_client_auth_subject_dn':
              return cert?.subject === expected;
            case 'tls_client_auth_san_dns':
              return cert?.subjectAltName?.split(', ').includes(`DNS:${expected}`) === true;
            default:
              return false;
          }
        },
      },
    },
  });
}

let handler = newProvider().callback();

const calls = { http: {}, https: {}, mtls: {} };

function admin(req, res, path) {
  const answer = (status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && path === '/_test/calls') {
    return answer(200, calls);
  }
  if (req.method === 'POST' && path === '/_test/rotate') {
    handler = newProvider().callback();
    return answer(200, { generation });
  }
  return answer(404, { error: 'not_found' });
}

function listener(scheme) {
  return (req, res) => {
    const { pathname } = new URL(req.url, 'http://in.request');
    if (pathname.startsWith('/_test/')) {
      admin(req, res, pathname);
      return;
    }
    calls[scheme][pathname] = (calls[scheme][pathname] ?? 0) + 1;
    handler(req, res);
  };
}

function listen(server, hostPort) {
  const i = hostPort.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(hostPort.slice(i + 1)), hostPort.slice(0, i), resolve);
  });
}

// Ask for a certificate, but let the provider judge it: tls_client_auth needs one the ca
// signed (certificateAuthorized), self_signed_tls_client_auth one registered in the
// client's jwks, and other methods need none.
const tlsOptions = {
  cert: readFileSync(config.tls.cert),
  key: readFileSync(config.tls.key),
  ca: readFileSync(config.tls.ca),
  requestCert: true,
  rejectUnauthorized: false,
};

await Promise.all([
  listen(http.createServer(listener('http')), config.http),
  listen(https.createServer(tlsOptions, listener('https')), config.https),
  listen(https.createServer(tlsOptions, listener('mtls')), config.mtls),
]);
process.on('SIGTERM', () => process.exit(0));
console.log('ready');
