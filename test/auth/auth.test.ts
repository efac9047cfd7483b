/** Authentication modes and their configuration rules. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator, hashApiKey } from '../../src/auth/auth.js';
import { DEFAULTS, loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';

const auth = (overrides: Partial<typeof DEFAULTS.auth>) => ({ ...DEFAULTS.auth, ...overrides });

async function code(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (error: unknown) => (error instanceof AppError ? error.code : String(error)),
  );
}

describe('authentication', () => {
  it('header mode: trusted headers, anonymous without them', async () => {
    const a = createAuthenticator(auth({ mode: 'header' }));
    expect(await a.authenticate({ 'X-User-ID': 'alice', 'x-team-ids': 'red, blue,', 'x-admin': 'true' })).toEqual({
      userId: 'alice',
      teams: ['red', 'blue'],
      admin: true,
    });
    expect(await a.authenticate({})).toEqual({ userId: null, teams: [], admin: false });
  });

  it('apiKey mode: Bearer or X-API-Key against hashed keys; a wrong key is refused, not anonymous', async () => {
    const a = createAuthenticator(
      auth({ mode: 'apiKey', apiKeys: [{ hash: hashApiKey('s3cret-key'), userId: 'svc', teams: ['ops'], admin: false }] }),
    );
    expect(await a.authenticate({ authorization: 'Bearer s3cret-key' })).toEqual({ userId: 'svc', teams: ['ops'], admin: false });
    expect(await a.authenticate({ 'x-api-key': 's3cret-key' })).toMatchObject({ userId: 'svc' });
    expect(await code(a.authenticate({ authorization: 'Bearer wrong' }))).toBe('UNAUTHENTICATED');
    expect(await code(a.authenticate({ authorization: 's3cret-key' }))).toBe('UNAUTHENTICATED');
    expect(await a.authenticate({})).toMatchObject({ userId: null });
    // Header mode's headers mean nothing here.
    expect(await a.authenticate({ 'x-user-id': 'mallory' })).toMatchObject({ userId: null });
  });

  it('jwt mode: claims mapping, issuer and audience', async () => {
    const secret = 'jwt-secret-for-tests-0123456789abcdef';
    const a = createAuthenticator(
      auth({
        mode: 'jwt',
        jwt: {
          ...DEFAULTS.auth.jwt,
          secret,
          issuer: 'https://id.example',
          audience: 'conveyor',
          claims: { userId: 'email', teams: 'org.groups', admin: 'staff' },
        },
      }),
    );
    const sign = (claims: Record<string, unknown>, iss = 'https://id.example') =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(iss)
        .setAudience('conveyor')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));
    expect(
      await a.authenticate({ authorization: `Bearer ${await sign({ email: 'a@x', org: { groups: ['red'] }, staff: true })}` }),
    ).toEqual({
      userId: 'a@x',
      teams: ['red'],
      admin: true,
    });
    expect(await code(a.authenticate({ authorization: `Bearer ${await sign({ email: 'a@x' }, 'https://evil.example')}` }))).toBe(
      'UNAUTHENTICATED',
    );
    expect(await code(a.authenticate({ authorization: `Bearer ${await sign({ sub: 'no-email' })}` }))).toBe('UNAUTHENTICATED');
  });

  it('jwt mode with a JWKS endpoint verifies RS256 tokens by key id', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
      const a = createAuthenticator(auth({ mode: 'jwt', jwt: { ...DEFAULTS.auth.jwt, jwksUrl } }));
      const token = await new SignJWT({ teams: ['ops'] })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject('svc')
        .setExpirationTime('5m')
        .sign(privateKey);
      expect(await a.authenticate({ authorization: `Bearer ${token}` })).toEqual({ userId: 'svc', teams: ['ops'], admin: false });
      const other = await generateKeyPair('RS256');
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('svc').sign(other.privateKey);
      expect(await code(a.authenticate({ authorization: `Bearer ${forged}` }))).toBe('UNAUTHENTICATED');
    } finally {
      server.close();
    }
  });

  it('refuses header mode on a public bind unless allowed, and jwt mode without exactly one key source', () => {
    const load = (overrides: Record<string, unknown>) => () => loadConfig({ file: null, env: {}, overrides });
    expect(load({ 'server.host': '0.0.0.0' })).toThrow(/auth.mode "header"/);
    expect(load({ 'server.host': '0.0.0.0', 'auth.allowHeaderModeOnPublicBind': true })).not.toThrow();
    expect(load({ 'server.host': '0.0.0.0', 'auth.mode': 'apiKey' })).not.toThrow();
    expect(load({ 'server.host': '::1' })).not.toThrow();
    expect(load({ 'auth.mode': 'jwt' })).toThrow(/exactly one of auth.jwt.secret/);
    expect(load({ 'auth.apiKeys': [{ hash: 'plain-text-key', userId: 'x' }] })).toThrow(/auth.apiKeys.0.hash/);
    const fromEnv = loadConfig({
      file: null,
      env: { CONVEYOR_AUTH__MODE: 'apiKey', CONVEYOR_AUTH__API_KEYS: JSON.stringify([{ hash: hashApiKey('k'), userId: 'svc' }]) },
    });
    expect(fromEnv.auth.apiKeys).toEqual([{ hash: hashApiKey('k'), userId: 'svc', teams: [], admin: false }]);
  });
});
