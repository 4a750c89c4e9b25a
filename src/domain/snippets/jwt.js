const crypto = require("node:crypto");

// HS256 JWT in Authorization: Bearer. headers: lower-case names; body: the raw Buffer.
function verifyHerald(secret, headers, body) {
  const [head, claims, sig] = (headers["authorization"] || "").replace(/^Bearer /, "").split(".");
  if (!sig) return false;
  const expected = crypto.createHmac("sha256", secret).update(`${head}.${claims}`).digest();
  const given = Buffer.from(sig, "base64url");
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return false;
  if (JSON.parse(Buffer.from(head, "base64url")).alg !== "HS256") return false;
  const c = JSON.parse(Buffer.from(claims, "base64url"));
  return c.iss === "herald" && c.exp > Date.now() / 1000
    && c.body_sha256 === crypto.createHash("sha256").update(body).digest("hex");
}
