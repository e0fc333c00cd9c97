// A forward server (@fluent-org/logger's FluentServer) that prints every entry it receives as one JSON
// line: {"tag", "sec", "nsec", "record"}. It acks frames that carry a chunk option.
// Usage: node server.js [SHARED_KEY]   (prints "listening PORT" first)
const { FluentServer, EventTime } = require("@fluent-org/logger");

async function main() {
  const key = process.argv[2];
  const opts = { listenOptions: { host: "127.0.0.1", port: 0 } };
  if (key) opts.security = { serverHostname: "node-server", sharedKey: key, authorize: false, userDict: {} };
  const server = new FluentServer(opts);
  server.on("entry", (tag, time, record) => {
    const t = time instanceof EventTime ? [time.epoch, time.nano] : [Number(time), 0];
    process.stdout.write(JSON.stringify({ tag, sec: t[0], nsec: t[1], record }) + "\n");
  });
  await server.listen();
  process.stdout.write(`listening ${server.port}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
