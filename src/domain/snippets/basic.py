import base64, hmac

def verify_herald(username: str, password: str, headers: dict) -> bool:
    """Basic auth. headers: lower-case names."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return hmac.compare_digest(headers.get("authorization", ""), expected)
