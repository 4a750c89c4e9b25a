const crypto = require("node:crypto");

// Hex HMAC-SHA256 of the raw body, keyed with the secret as given. headers: lower-case names.
function verifyHerald(secret, headers, body) {
  const expected = Buffer.from(crypto.createHmac("sha256", secret).update(body).digest("hex"));
  const given = Buffer.from((headers["x-incentable-signature"] || "").trim().toLowerCase());
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
