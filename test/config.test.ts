import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULTS, envName, getConfigPath, isOn, listKeys, loadConfig, sqlitePath } from '../src/config.js';
import { AppError } from '../src/errors.js';

function configError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('CONFIG_INVALID');
    return error as AppError;
  }
  throw new Error('expected a config error');
}

function yamlFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'conveyor-config-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  it('config.yaml documents exactly the built-in defaults', () => {
    expect(parse(readFileSync('config.yaml', 'utf8'))).toEqual(DEFAULTS);
  });

  it('uses the defaults when there is no file and no environment', () => {
    const config = loadConfig({ env: {}, file: null });
    expect(config).toEqual(DEFAULTS);
    expect(sqlitePath(config)).toMatch(/data\/conveyor\.db$/);
  });

  it('names environment variables by the documented rule', () => {
    expect(envName('store.sqlite.busyTimeoutMs')).toBe('CONVEYOR_STORE__SQLITE__BUSY_TIMEOUT_MS');
    expect(envName('dataDir')).toBe('CONVEYOR_DATA_DIR');
  });

  it('lets the environment override the file, with the required short names', () => {
    const file = yamlFile('server:\n  port: 5000\nstore:\n  sqlite:\n    changePollMs: 20\n');
    const config = loadConfig({
      file,
      env: {
        CONVEYOR_HOST: '0.0.0.0',
        CONVEYOR_PORT: '6000',
        CONVEYOR_DATA_DIR: '/var/lib/conveyor',
        CONVEYOR_STORE: 'mongodb',
        MONGODB_URI: 'mongodb://db:27017/?replicaSet=rs0',
        CONVEYOR_NET_ALLOW: '127.0.0.1, 10.0.0.0/8,hooks.internal',
        CONVEYOR_RETENTION__COMPLETED_DAYS: '7',
        CONVEYOR_AUTH__MODE: 'apiKey',
        PATH: '/usr/bin',
      },
    });
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 6000 });
    expect(config.store.sqlite.changePollMs).toBe(20);
    expect(config.dataDir).toBe('/var/lib/conveyor');
    expect(config.store.driver).toBe('mongodb');
    expect(config.store.mongodb.uri).toBe('mongodb://db:27017/?replicaSet=rs0');
    expect(config.net.allow).toEqual(['127.0.0.1', '10.0.0.0/8', 'hooks.internal']);
    expect(config.retention.completedDays).toBe(7);
  });

  it('reads the file named by CONVEYOR_CONFIG and refuses a missing one', () => {
    const file = yamlFile('log:\n  level: debug\n');
    expect(loadConfig({ env: { CONVEYOR_CONFIG: file } }).log.level).toBe('debug');
    expect(configError(() => loadConfig({ env: { CONVEYOR_CONFIG: '/nope/config.yaml' } })).message).toContain('does not exist');
  });

  it('stops on an unknown key, naming it and the allowed keys', () => {
    const error = configError(() => loadConfig({ env: {}, file: yamlFile('server:\n  hots: x\n') }));
    expect(error.message).toContain('unknown key "server.hots"');
    expect(error.message).toContain('allowed keys here: host, port, shutdownGraceMs');
  });

  it('stops on an invalid value, naming the key and the allowed values', () => {
    const error = configError(() => loadConfig({ env: { CONVEYOR_STORE: 'postgres' }, file: null }));
    expect(error.message).toContain('store.driver (from CONVEYOR_STORE)');
    expect(error.message).toContain('"sqlite", "mongodb"');
    expect(configError(() => loadConfig({ env: { CONVEYOR_PORT: 'eighty' }, file: null })).message).toContain(
      'CONVEYOR_PORT (server.port): expected a number',
    );
    expect(configError(() => loadConfig({ env: { CONVEYOR_PORT: '70000' }, file: null })).message).toContain('server.port');
    expect(configError(() => loadConfig({ env: { CONVEYOR_NET_ALLOW: '10.0.0.0/99' }, file: null })).message).toContain('net.allow.0');
  });

  it('refuses unknown CONVEYOR_ variables (typos) and malformed files', () => {
    expect(configError(() => loadConfig({ env: { CONVEYOR_PROT: '1' }, file: null })).message).toContain('CONVEYOR_PROT');
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('server: [1, 2\n') })).message).toContain('not valid YAML');
    expect(configError(() => loadConfig({ env: {}, file: yamlFile('- a\n- b\n') })).message).toContain('mapping');
  });
});

describe('list-typed keys from the environment', () => {
  // One example per list key: a new list key without one fails here, so each gets a test.
  const examples: Record<string, { raw: string; expected: unknown[] }> = {
    'handlers.modules': { raw: './a.js, ./b.js', expected: ['./a.js', './b.js'] },
    'net.allow': { raw: '127.0.0.1,10.0.0.0/8 , 127.0.0.2:8080', expected: ['127.0.0.1', '10.0.0.0/8', '127.0.0.2:8080'] },
    'webhooks.schedule': { raw: '300,600', expected: [300, 600] },
    'server.allowedHosts': { raw: 'jobs.example.com, *.corp.example', expected: ['jobs.example.com', '*.corp.example'] },
    'server.allowedOrigins': { raw: 'https://app.example.com,*', expected: ['https://app.example.com', '*'] },
    'auth.apiKeys': {
      raw: JSON.stringify([{ hash: `sha256:${'a'.repeat(64)}`, userId: 'ci', teams: ['ops'] }]),
      expected: [{ hash: `sha256:${'a'.repeat(64)}`, userId: 'ci', teams: ['ops'], admin: false }],
    },
  };

  for (const { path, kind } of listKeys()) {
    it(`${envName(path)} (${kind} items) parses as documented`, () => {
      const example = examples[path];
      if (example === undefined) throw new Error(`no example for the list key ${path}: add one to this test`);
      const config = loadConfig({ env: { [envName(path)]: example.raw }, file: null });
      expect(getConfigPath(config, path)).toEqual(example.expected);
    });
  }

  it('refuses a list item of the wrong type, naming the variable and the item', () => {
    expect(configError(() => loadConfig({ env: { CONVEYOR_WEBHOOKS__SCHEDULE: '300,soon' }, file: null })).message).toContain(
      'CONVEYOR_WEBHOOKS__SCHEDULE (webhooks.schedule): expected a number, got "soon"',
    );
  });

  it('refuses booleans other than true and false, and a malformed JSON list', () => {
    expect(configError(() => loadConfig({ env: { CONVEYOR_METRICS__ENABLED: 'yes' }, file: null })).message).toContain(
      'CONVEYOR_METRICS__ENABLED (metrics.enabled): expected true or false, got "yes"',
    );
    expect(configError(() => loadConfig({ env: { CONVEYOR_AUTH__API_KEYS: '[{"hash": ' }, file: null })).message).toContain(
      'expected a JSON list',
    );
  });
});

describe('server and graphql security settings', () => {
  it('takes true, false or auto for graphql.introspection and graphql.suggestions; auto is off only under NODE_ENV=production', () => {
    expect(DEFAULTS.graphql).toMatchObject({ introspection: 'auto', suggestions: 'auto' });
    const config = loadConfig({ env: { CONVEYOR_GRAPHQL__INTROSPECTION: 'true', CONVEYOR_GRAPHQL__SUGGESTIONS: 'auto' }, file: null });
    expect(config.graphql).toMatchObject({ introspection: true, suggestions: 'auto' });
    expect(isOn('auto', { NODE_ENV: 'production' })).toBe(false);
    expect(isOn('auto', { NODE_ENV: 'development' })).toBe(true);
    expect(isOn('auto', {})).toBe(true);
    expect(isOn(true, { NODE_ENV: 'production' })).toBe(true);
    expect(configError(() => loadConfig({ env: { CONVEYOR_GRAPHQL__INTROSPECTION: 'maybe' }, file: null })).message).toContain(
      'graphql.introspection',
    );
  });

  it('listens on a bracketed IPv6 host as the bare address, and refuses inconsistent timeouts and malformed origins', () => {
    expect(loadConfig({ env: { CONVEYOR_HOST: '[::1]' }, file: null }).server.host).toBe('::1');
    expect(
      configError(() =>
        loadConfig({ env: { CONVEYOR_SERVER__HEADERS_TIMEOUT_MS: '5000', CONVEYOR_SERVER__REQUEST_TIMEOUT_MS: '1000' }, file: null }),
      ).message,
    ).toContain('server.headersTimeoutMs');
    expect(configError(() => loadConfig({ env: { CONVEYOR_SERVER__ALLOWED_ORIGINS: 'app.example.com' }, file: null })).message).toContain(
      'server.allowedOrigins.0',
    );
  });
});

describe('checks across keys', () => {
  const load = (overrides: Record<string, unknown>) => loadConfig({ file: null, env: {}, overrides });

  it('needs worker.heartbeatMs at most half of worker.leaseMs, naming both values', () => {
    expect(load({ 'worker.leaseMs': 1000, 'worker.heartbeatMs': 500 }).worker).toMatchObject({ leaseMs: 1000, heartbeatMs: 500 });
    const error = configError(() => load({ 'worker.leaseMs': 1000, 'worker.heartbeatMs': 501 }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('worker.heartbeatMs (501) must be at most half of worker.leaseMs (1000)');
  });

  it('needs webhooks.leaseMs longer than webhooks.timeoutMs, naming both values', () => {
    expect(load({ 'webhooks.leaseMs': 5001, 'webhooks.timeoutMs': 5000 }).webhooks).toMatchObject({ leaseMs: 5001, timeoutMs: 5000 });
    const error = configError(() => load({ 'webhooks.leaseMs': 5000, 'webhooks.timeoutMs': 5000 }));
    expect(error.message).toContain('webhooks.leaseMs (5000) must be longer than webhooks.timeoutMs (5000)');
    // The same from the environment.
    expect(
      configError(() => loadConfig({ file: null, env: { CONVEYOR_WEBHOOKS__LEASE_MS: '1000', CONVEYOR_WEBHOOKS__TIMEOUT_MS: '2000' } }))
        .message,
    ).toContain('webhooks.leaseMs (1000)');
  });
});
