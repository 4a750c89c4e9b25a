package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// VerifyHerald checks the hex HMAC-SHA256 of the raw body, keyed with the secret as given.
func VerifyHerald(secret string, h http.Header, body []byte) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	given, err := hex.DecodeString(strings.TrimSpace(h.Get("x-incentable-signature")))
	return err == nil && hmac.Equal(given, mac.Sum(nil))
}
