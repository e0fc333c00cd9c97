// Sends events to a forward server with @fluent-org/logger.
// Usage: node send.js PORT MODE ACK(0|1) [SHARED_KEY]
// Sends 20 events tagged node.<mode> with records {"i": N, "mode": MODE} and EventTime(1700000000 + N, N).
const { FluentClient, EventTime } = require("@fluent-org/logger");

async function main() {
  const [port, mode, ack, key] = process.argv.slice(2);
  const opts = {
    eventMode: mode,
    socket: { host: "127.0.0.1", port: Number(port), timeout: 10000 },
    flushInterval: 20,
  };
  if (ack === "1") opts.ack = { ackTimeout: 10000 };
  if (key) opts.security = { clientHostname: "node-client", sharedKey: key };
  const client = new FluentClient("node", opts);
  const sends = [];
  for (let i = 0; i < 20; i++) {
    sends.push(client.emit(mode.toLowerCase(), { i, mode }, new EventTime(1700000000 + i, i)));
  }
  await Promise.all(sends);
  await client.disconnect();
  console.log("sent");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
