// node-postgres through seedproxy over TLS: argv: port user password ca_file [servername].
// Prints "ok <user> <upstream ssl>" or "error <message>". Run by test_tls_drivers.py.
const fs = require("fs");
const { Client } = require("pg");

const [port, user, password, caFile, servername] = process.argv.slice(2);
const client = new Client({
  host: "127.0.0.1", port: Number(port), user, password, database: "postgres",
  ssl: { ca: fs.readFileSync(caFile), rejectUnauthorized: true, servername },
  enableChannelBinding: true, connectionTimeoutMillis: 10000,
});
client.connect()
  .then(() => client.query("select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"))
  .then((res) => { console.log(`ok ${res.rows[0].current_user} ${res.rows[0].ssl}`); return client.end(); })
  .catch((err) => { console.log(`error ${err.message}`); process.exit(1); });
