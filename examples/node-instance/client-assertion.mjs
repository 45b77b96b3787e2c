// private_key_jwt (RFC 7523) for the broker's token endpoint: a short-lived assertion signed with this instance's own
// signing key, whose public JWK is "clientKey" in the broker's allowlist entry. Its audience is the broker's issuer
// identifier alone, as the revision of RFC 7523 after the 2025 audience-injection findings requires.
//   import { clientAssertion } from './client-assertion.mjs';
//   fetch(`${broker}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token',
//     refresh_token, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
//     client_assertion: await clientAssertion(privateJwk, instanceId, brokerIssuer) }) })
// Run directly (node client-assertion.mjs) it reads PRIVATE_JWK, CLIENT_ID and ISSUER and prints one assertion.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { SignJWT, importJWK } from 'jose';

export async function clientAssertion(privateJwk, clientId, issuer) {
  const alg = privateJwk.alg ?? (privateJwk.kty === 'EC' ? 'ES256' : 'RS256');
  return new SignJWT({})
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(issuer)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(await importJWK(privateJwk, alg));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await clientAssertion(JSON.parse(process.env.PRIVATE_JWK), process.env.CLIENT_ID, process.env.ISSUER));
}
