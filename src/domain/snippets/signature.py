import base64, hashlib, hmac, time

def verify_herald(secret: str, headers: dict, body: bytes) -> bool:
    """Standard Webhooks signature. headers: lower-case names; body: the raw bytes received."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False  # too old (or from the future): a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig[3:], expected)
        for sig in headers["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    )
