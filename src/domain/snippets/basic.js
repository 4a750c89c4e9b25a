const crypto = require("node:crypto");

// Basic auth. headers: lower-case names.
function verifyHerald(username, password, headers) {
  const expected = Buffer.from("Basic " + Buffer.from(`${username}:${password}`).toString("base64"));
  const given = Buffer.from(headers["authorization"] || "");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
