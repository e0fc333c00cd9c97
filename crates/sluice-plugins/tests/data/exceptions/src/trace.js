// A caught error logged with its stack, then an uncaught TypeError.
function parse(body) {
  return JSON.parse(body);
}

try {
  parse("{not json");
} catch (err) {
  console.error(err.stack);
}
console.error("INFO continuing");
const order = undefined;
order.id;
