// An example instance (think Trackeep) that lets OAuthBroker run "Sign in with GitHub".
//
//   BROKER_URL=https://oauth.example.com INSTANCE_ID=my-instance INSTANCE_PRIVATE_JWK_FILE=instance-key.json node server.mjs
//
// It uses nothing of the broker's but its URL: the JWT is verified against the broker's published JWKS, and the
// GitHub token is decrypted with this instance's own private key, which never leaves the instance.
// RESPONSE_MODE chooses how the broker hands the result back: query (default), fragment or form_post.
// With INSTANCE_CLIENT_JWK (this instance's private signing key, whose public half is "clientKey" in its allowlist
// entry) it also refreshes (POST /refresh) and revokes (POST /revoke) the last sign-in's GitHub token through the
// broker, authenticating with a private_key_jwt assertion. With "webhookUrl": "<this instance>/webhooks" in its entry
// (a GitHub App entry), it verifies the GitHub App events the broker relays to it and lists them at GET /webhooks.
import { createServer } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compactDecrypt, createRemoteJWKSet, importJWK, jwtVerify } from 'jose';
import { clientAssertion } from './client-assertion.mjs';

const brokerUrl = required('BROKER_URL').replace(/\/$/, '');
const instanceId = required('INSTANCE_ID');
const gitHubApiUrl = (process.env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/$/, '');
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 3000);
const responseMode = process.env.RESPONSE_MODE ?? 'query';
const privateJwk = JSON.parse(process.env.INSTANCE_PRIVATE_JWK ?? readFileSync(required('INSTANCE_PRIVATE_JWK_FILE'), 'utf8'));
// A key without "alg" gets the broker's default for its type (the first one the README lists for each kty).
const keyAlgorithm = privateJwk.alg ?? { RSA: 'RSA-OAEP-256', EC: 'ECDH-ES+A256KW', oct: 'A256KW' }[privateJwk.kty];

const clientJwk = process.env.INSTANCE_CLIENT_JWK ? JSON.parse(process.env.INSTANCE_CLIENT_JWK) : null;
// The last sign-in's GitHub tokens, for /refresh and /revoke; a real instance keeps them in its own session store.
let held = null;

// Fetched once, cached, and refetched when a token names a kid it has not seen (key rotation).
const brokerKeys = createRemoteJWKSet(new URL(`${brokerUrl}/.well-known/jwks.json`));
const decryptionKey = await importJWK(privateJwk, keyAlgorithm);

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}`);
  return value;
}

function cookie(request, name) {
  const match = (request.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${name}=`));
  return match?.slice(name.length + 1);
}

function json(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body, null, 2));
}

function html(response, body) {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing in</title></head><body>${body}</body></html>`);
}

async function readBody(request) {
  let body = '';
  for await (const chunk of request) {
    body += chunk;
    if (body.length > 1024 * 1024) throw Object.assign(new Error('body too large'), { code: 'BODY_TOO_LARGE' });
  }
  return body;
}

async function formFields(request) {
  return new URLSearchParams(await readBody(request));
}

// GitHub App events the broker relays to this instance (its entry's "webhookUrl" pointing at /webhooks): each is a
// JWS from the broker, checked like its JWTs plus its own type, and handled once per jti (the relay is at least once).
const seenEvents = new Set();
const events = [];

async function webhook(request, response) {
  const { payload, protectedHeader } = await jwtVerify(await readBody(request), brokerKeys, {
    issuer: brokerUrl, audience: instanceId, typ: 'github-event+jwt', algorithms: ['ES256', 'RS256'], clockTolerance: 30, maxTokenAge: '10m',
  });
  if (seenEvents.has(payload.jti)) return json(response, 200, { duplicate: true });
  seenEvents.add(payload.jti);
  events.push({ event: payload.event, delivery: payload.jti, action: payload.payload?.action ?? null, installation: payload.payload?.installation?.id ?? null, kid: protectedHeader.kid });
  return json(response, 200, { received: true });
}

// fragment: the result is after '#', which browsers never send to a server; this page hands it to ours, same-origin.
const fragmentPage = `<form method="post" action="/auth/complete"></form><script>
  const fields = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  for (const [name, value] of fields) {
    const input = Object.assign(document.createElement('input'), { type: 'hidden', name, value });
    document.forms[0].append(input);
  }
  document.forms[0].submit();
</script>`;

// form_post: the broker's page posts to us from its own site, and a cross-site POST carries no SameSite=Lax cookie,
// so our state cookie is missing here. Post the same fields once more, from our own page, where it is sent.
function repostPage(fields) {
  const inputs = [...fields].filter(([name]) => ['token', 'user', 'state', 'iss', 'error', 'error_description'].includes(name))
    .map(([name, value]) => `<input type="hidden" name="${escape(name)}" value="${escape(value)}">`).join('');
  return `<form method="post" action="/auth/complete">${inputs}<noscript><button>Continue</button></noscript></form><script>document.forms[0].submit();</script>`;
}

function escape(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// fields: token, user, state (or error, error_description, state), from the query, the fragment or the form.
async function signIn(fields, request, response) {
  // Our own state, checked on return, so nobody can log a user into this instance with someone else's token.
  const expected = cookie(request, 'instance_state');
  const state = fields.get('state') ?? '';
  if (!expected || expected.length !== state.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(state))) {
    return json(response, 400, { error: 'state_mismatch' });
  }
  // RFC 9207: the broker names itself in every answer, so an answer from another provider is not taken for its own.
  if (fields.get('iss') !== brokerUrl) {
    return json(response, 400, { error: 'issuer_mismatch' });
  }
  if (fields.has('error')) {
    return json(response, 400, { error: fields.get('error'), error_description: fields.get('error_description') });
  }

  // 1. The JWT: signed by the broker, for this instance, unexpired. Use its "username", never the unsigned "user".
  const { payload, protectedHeader } = await jwtVerify(fields.get('token') ?? '', brokerKeys, {
    issuer: brokerUrl,
    audience: instanceId,
    algorithms: ['ES256', 'RS256'],
    clockTolerance: 30,
  });

  return json(response, 200, await describe(payload, protectedHeader));
}

// The JWT's tokens opened and used: the same for a sign-in and a refresh, which answers a JWT of the same shape.
async function describe(payload, protectedHeader) {
  // 2. The GitHub token inside it: a JWE only this instance's private key opens; the refresh token, likewise.
  const gitHubToken = payload.access_token ? await decrypt(payload.access_token) : null;
  const refreshToken = payload.refresh_token ? await decrypt(payload.refresh_token) : null;
  held = gitHubToken ? { gitHubToken, refreshToken } : null;

  // 3. Call GitHub as the user, directly: the broker is not in this path.
  let gitHubUser = null;
  if (gitHubToken) {
    const answer = await fetch(`${gitHubApiUrl}/user`, {
      headers: {
        authorization: `Bearer ${gitHubToken}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'oauthbroker-example-instance',
      },
    });
    gitHubUser = { status: answer.status, body: await answer.json() };
  }

  const { access_token: _encrypted, refresh_token: _encryptedRefresh, ...claims } = payload;
  return {
    responseMode,
    signedInAs: payload.username,
    kid: protectedHeader.kid,
    claims,
    // A digest, so the example never prints a live token.
    accessTokenSha256: gitHubToken && createHash('sha256').update(gitHubToken).digest('hex'),
    gitHubUser,
  };
}

async function decrypt(jwe) {
  const { plaintext } = await compactDecrypt(jwe, decryptionKey, { keyManagementAlgorithms: [keyAlgorithm], contentEncryptionAlgorithms: ['A256GCM'] });
  return new TextDecoder().decode(plaintext);
}

// The broker's token endpoint or its revocation endpoint, authenticated as this instance with private_key_jwt.
async function brokerPost(path, fields) {
  const answer = await fetch(`${brokerUrl}${path}`, {
    method: 'POST',
    body: new URLSearchParams({
      ...fields,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(clientJwk, instanceId, brokerUrl),
    }),
  });
  return { status: answer.status, body: await answer.json() };
}

async function refresh(response) {
  if (!clientJwk || !held?.refreshToken) return json(response, 409, { error: 'nothing_to_refresh' });
  const { status, body } = await brokerPost('/oauth/token', { grant_type: 'refresh_token', refresh_token: held.refreshToken });
  if (status !== 200) return json(response, status, body);
  const { payload, protectedHeader } = await jwtVerify(body.token, brokerKeys, { issuer: brokerUrl, audience: instanceId, algorithms: ['ES256', 'RS256'], clockTolerance: 30 });
  return json(response, 200, await describe(payload, protectedHeader));
}

async function revoke(response) {
  if (!clientJwk || !held?.gitHubToken) return json(response, 409, { error: 'nothing_to_revoke' });
  const { status, body } = await brokerPost('/oauth/revoke', { token: held.gitHubToken });
  return json(response, status, { revoked: status === 200, ...body });
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url, `http://${request.headers.host}`);
  try {
    if (url.pathname === '/login') {
      const state = randomBytes(16).toString('base64url');
      const callback = `http://${request.headers.host}/auth/callback`;
      const login = new URL(`${brokerUrl}/auth/github`);
      login.searchParams.set('redirect_uri', callback);
      login.searchParams.set('state', state);
      if (responseMode !== 'query') login.searchParams.set('response_mode', responseMode);
      response.writeHead(302, { location: login.toString(), 'set-cookie': `instance_state=${state}; HttpOnly; SameSite=Lax; Path=/` });
      return response.end();
    }
    if (url.pathname === '/auth/callback' && request.method === 'GET') {
      return url.searchParams.has('state') || url.searchParams.has('token') ? await signIn(url.searchParams, request, response) : html(response, fragmentPage);
    }
    if (url.pathname === '/auth/callback' && request.method === 'POST') return html(response, repostPage(await formFields(request)));
    if (url.pathname === '/auth/complete' && request.method === 'POST') return await signIn(await formFields(request), request, response);
    if (url.pathname === '/refresh' && request.method === 'POST') return await refresh(response);
    if (url.pathname === '/revoke' && request.method === 'POST') return await revoke(response);
    if (url.pathname === '/webhooks' && request.method === 'POST') return await webhook(request, response);
    if (url.pathname === '/webhooks' && request.method === 'GET') return json(response, 200, events);
    json(response, 404, { error: 'not_found' });
  } catch (error) {
    json(response, 401, { error: 'invalid_token', reason: error.code ?? error.name });
  }
});

server.listen(port, host, () => console.log(`listening on http://${host}:${server.address().port}`));
