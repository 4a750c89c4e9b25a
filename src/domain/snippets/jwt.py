import base64, hashlib, hmac, json, time

def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

def verify_herald(secret: str, headers: dict, body: bytes) -> bool:
    """HS256 JWT in Authorization: Bearer. headers: lower-case names; body: the raw bytes."""
    token = headers.get("authorization", "").removeprefix("Bearer ")
    try:
        head, claims, sig = token.split(".")
    except ValueError:
        return False
    expected = hmac.new(secret.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    if json.loads(_b64url(head)).get("alg") != "HS256" or not hmac.compare_digest(_b64url(sig), expected):
        return False
    c = json.loads(_b64url(claims))
    return (c.get("iss") == "herald" and c.get("exp", 0) > time.time()
            and c.get("body_sha256") == hashlib.sha256(body).hexdigest())
