import hashlib, hmac

def verify_herald(secret: str, headers: dict, body: bytes) -> bool:
    """Hex HMAC-SHA256 of the raw body, keyed with the secret as given. headers: lower-case names."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-incentable-signature", "").strip().lower(), expected)
