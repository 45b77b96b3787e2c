// The example instance's second mode: it signs users in through the broker as through any OpenID Connect provider,
// with panva's openid-client (a certified relying-party library) and nothing written for the broker.
//
//   BROKER_URL=https://oauth.example.com INSTANCE_ID=my-instance CLIENT_SECRET=... node oidc-server.mjs
//
// Client authentication at the token endpoint: CLIENT_SECRET (client_secret_basic), INSTANCE_CLIENT_JWK (this
// instance's private signing key, private_key_jwt), or neither (a public client: "public": true in its entry).
// Every flow uses discovery, PKCE (S256), state and nonce; openid-client checks the ID token, iss in the
// authorization response (RFC 9207) and the issuer against discovery. With INSTANCE_PRIVATE_JWK the GitHub token the
// broker encrypted to this instance (github_access_token) is decrypted and GitHub's /user is called with it; for an
// entry with "refresh": true, GET /refresh renews it with openid-client's refresh-token grant.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { compactDecrypt, importJWK } from 'jose';

const brokerUrl = required('BROKER_URL').replace(/\/$/, '');
const instanceId = required('INSTANCE_ID');
const gitHubApiUrl = (process.env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/$/, '');
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
const scope = process.env.SCOPE ?? 'openid profile email';

let authentication;
if (process.env.CLIENT_SECRET) {
  authentication = client.ClientSecretBasic(process.env.CLIENT_SECRET);
} else if (process.env.INSTANCE_CLIENT_JWK) {
  const jwk = JSON.parse(process.env.INSTANCE_CLIENT_JWK);
  authentication = client.PrivateKeyJwt({ key: await importJWK(jwk, jwk.alg ?? 'ES256'), kid: jwk.kid });
} else {
  authentication = client.None();
}

// The broker runs on plain http only on 127.0.0.1 (tests, the demo); anywhere else openid-client insists on https.
const insecure = new URL(brokerUrl).protocol === 'http:';
const config = await client.discovery(new URL(brokerUrl), instanceId, undefined, authentication, insecure ? { execute: [client.allowInsecureRequests] } : undefined);
const privateJwk = process.env.INSTANCE_PRIVATE_JWK ? JSON.parse(process.env.INSTANCE_PRIVATE_JWK) : null;
const decryptionKey = privateJwk ? await importJWK(privateJwk, privateJwk.alg ?? { RSA: 'RSA-OAEP-256', EC: 'ECDH-ES+A256KW', oct: 'A256KW' }[privateJwk.kty]) : null;

// Sign-ins under way, by state, and signed-in sessions, by cookie; a real instance keeps both in its session store.
const pending = new Map();
const sessions = new Map();

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}`);
  return value;
}

function json(response, status, body, headers = {}) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  response.end(JSON.stringify(body, null, 2));
}

// GitHub's /user with the token the broker encrypted to this instance; the token itself only as its SHA-256.
async function callGitHub(jwe) {
  if (!jwe || !decryptionKey) return { gitHubUser: null, accessTokenSha256: null };
  const { plaintext } = await compactDecrypt(jwe, decryptionKey);
  const gitHubToken = new TextDecoder().decode(plaintext);
  const answer = await fetch(`${gitHubApiUrl}/user`, { headers: { authorization: `Bearer ${gitHubToken}`, 'user-agent': 'oauthbroker-example', accept: 'application/vnd.github+json' } });
  return { gitHubUser: { status: answer.status, body: await answer.json() }, accessTokenSha256: createHash('sha256').update(gitHubToken).digest('hex') };
}

function sessionOf(request) {
  const id = /(?:^|;\s*)sid=([\w-]+)/.exec(request.headers.cookie ?? '')?.[1];
  return id ? sessions.get(id) : undefined;
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url, `http://${request.headers.host}`);
  const redirectUri = `http://${request.headers.host}/auth/callback`;
  try {
    if (url.pathname === '/login') {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      pending.set(state, { verifier, nonce });
      const target = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope,
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      response.writeHead(302, { location: target.href });
      return response.end();
    }

    if (url.pathname === '/auth/callback') {
      const state = url.searchParams.get('state');
      const started = pending.get(state);
      pending.delete(state);
      if (!started) return json(response, 400, { error: 'unknown state' });
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: started.verifier,
        expectedState: state,
        expectedNonce: started.nonce,
        idTokenExpected: scope.split(' ').includes('openid'),
      });
      const claims = tokens.claims();
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims?.sub ?? client.skipSubjectCheck);
      const sid = client.randomState();
      sessions.set(sid, { refreshToken: tokens.refresh_token, sub: claims?.sub });
      return json(response, 200, {
        signedInAs: userinfo.preferred_username ?? claims?.sub, claims, userinfo, scope: tokens.scope, canRefresh: Boolean(tokens.refresh_token), ...(await callGitHub(tokens.github_access_token)),
      }, { 'set-cookie': `sid=${sid}; HttpOnly; SameSite=Lax; Path=/` });
    }

    // For entries with "refresh": true: a new GitHub token (and ID token, access token, refresh token) without the user.
    if (url.pathname === '/refresh') {
      const session = sessionOf(request);
      if (!session?.refreshToken) return json(response, 400, { error: 'no refresh token in this session' });
      const tokens = await client.refreshTokenGrant(config, session.refreshToken);
      session.refreshToken = tokens.refresh_token ?? session.refreshToken;
      const claims = tokens.claims();
      if (claims && claims.sub !== session.sub) return json(response, 502, { error: 'the refreshed ID token names another user' });
      return json(response, 200, { claims, scope: tokens.scope, ...(await callGitHub(tokens.github_access_token)) });
    }

    json(response, 404, { error: 'not found' });
  } catch (error) {
    // openid-client names the check that failed (iss, nonce, signature, …); a real instance would log it.
    json(response, 502, { error: error.code ?? error.name, message: error.message, cause: error.cause?.error ?? null });
  }
});

server.listen(port, host, () => console.log(`listening on http://${host}:${server.address().port}`));
