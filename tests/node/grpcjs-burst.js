// A burst of etcd clients on grpc-js (the etcd3 package, one channel each), all started at once from one host:
// each connects with its client certificate and makes one linearizable get. Prints one JSON line: how many got an
// answer, how many failed and why, and when the last answer came (ms from the start).
// Usage: node grpcjs-burst.js <endpoint> <count> <ca> <cert> <key>
'use strict';
const fs = require('fs');
const { Etcd3 } = require('etcd3');
// No retries: a refused or reset client must count as failed, not be hidden by a second try.
const { noop } = require('cockatiel');

async function main() {
  const [endpoint, countText, ca, cert, key] = process.argv.slice(2);
  const count = parseInt(countText, 10);
  const credentials = { rootCertificate: fs.readFileSync(ca), certChain: fs.readFileSync(cert), privateKey: fs.readFileSync(key) };
  const clients = Array.from({ length: count }, () => new Etcd3({ hosts: endpoint, credentials, dialTimeout: 30000, faultHandling: { global: noop, host: () => noop } }));
  const start = process.hrtime.bigint();
  let last = 0;
  const errors = {};
  const results = await Promise.all(clients.map(async (c) => {
    try {
      await c.get('burst').string();
      last = Math.max(last, Number(process.hrtime.bigint() - start) / 1e6);
      return true;
    } catch (e) {
      const why = `${e.constructor.name}: ${e.message}`.slice(0, 160);
      errors[why] = (errors[why] || 0) + 1;
      return false;
    }
  }));
  clients.forEach((c) => c.close());
  const ok = results.filter(Boolean).length;
  console.log(JSON.stringify({ ok, failed: count - ok, lastMs: Math.round(last), errors }));
}

main().catch((e) => { console.error(e); process.exit(2); });
