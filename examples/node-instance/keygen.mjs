// Makes this instance's key pair: the private JWK stays here, the public JWK goes into the broker's
// allowed-redirects.json as "encryptionKey".
//   node keygen.mjs instance-key.json
//   node keygen.mjs instance-key.json --demo-allowlist demo-allowlist.json   # also writes an allowlist for the demo
import { writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair } from 'jose';

const [file = 'instance-key.json', option, allowlistFile] = process.argv.slice(2);
if (option !== undefined && (option !== '--demo-allowlist' || !allowlistFile)) {
  console.error('usage: node keygen.mjs [KEY_FILE] [--demo-allowlist ALLOWLIST_FILE]');
  process.exit(2);
}

const { publicKey, privateKey } = await generateKeyPair('RSA-OAEP-256', { modulusLength: 3072, extractable: true });
writeFileSync(file, JSON.stringify({ ...(await exportJWK(privateKey)), alg: 'RSA-OAEP-256' }, null, 2), { mode: 0o600 });
const publicJwk = { ...(await exportJWK(publicKey)), alg: 'RSA-OAEP-256', use: 'enc' };
console.log(JSON.stringify(publicJwk));
if (allowlistFile) {
  // This example as the demo broker's one instance: any loopback port may receive the answer (the allowlist's rule
  // for loopback), so the example may listen where it likes.
  const entry = { id: process.env.INSTANCE_ID ?? 'node-example', redirectUris: ['http://127.0.0.1/auth/callback'], encryptionKey: publicJwk };
  writeFileSync(allowlistFile, JSON.stringify({ instances: [entry] }, null, 2) + '\n');
}
