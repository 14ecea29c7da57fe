// node-postgres through seedproxy over TLS: argv: port user password ca_file [servername
// [cert_file key_file]]. ca_file "-" is sslmode=require (encrypted, the proxy not verified);
// servername "-" is the default. Prints "ok <user> <upstream ssl>" or "error <message>".
// Run by test_tls_drivers.py.
const fs = require("fs");
const { Client } = require("pg");

const [port, user, password, caFile, servername, certFile, keyFile] = process.argv.slice(2);
const ssl = caFile === "-"
  ? { rejectUnauthorized: false }
  : { ca: fs.readFileSync(caFile), rejectUnauthorized: true };
if (servername && servername !== "-") ssl.servername = servername;
if (certFile) {
  ssl.cert = fs.readFileSync(certFile);
  ssl.key = fs.readFileSync(keyFile);
}
const client = new Client({
  host: "127.0.0.1", port: Number(port), user, password, database: "postgres", ssl,
  enableChannelBinding: true, connectionTimeoutMillis: 10000,
});
client.connect()
  .then(() => client.query("select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"))
  .then((res) => { console.log(`ok ${res.rows[0].current_user} ${res.rows[0].ssl}`); return client.end(); })
  .catch((err) => { console.log(`error ${err.message}`); process.exit(1); });
