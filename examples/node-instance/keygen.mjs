// Makes this instance's key pair: the private JWK stays here, the public JWK goes into the broker's
// allowed-redirects.json as "encryptionKey".
//   node keygen.mjs instance-key.json
import { writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair } from 'jose';

const file = process.argv[2] ?? 'instance-key.json';
const { publicKey, privateKey } = await generateKeyPair('RSA-OAEP-256', { modulusLength: 3072, extractable: true });
writeFileSync(file, JSON.stringify({ ...(await exportJWK(privateKey)), alg: 'RSA-OAEP-256' }, null, 2), { mode: 0o600 });
console.log(JSON.stringify({ ...(await exportJWK(publicKey)), alg: 'RSA-OAEP-256', use: 'enc' }));
