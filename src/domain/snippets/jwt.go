package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// VerifyHerald checks the HS256 JWT in Authorization: Bearer; body is the raw request body.
func VerifyHerald(secret string, h http.Header, body []byte) bool {
	parts := strings.Split(strings.TrimPrefix(h.Get("Authorization"), "Bearer "), ".")
	if len(parts) != 3 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	given, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(given, mac.Sum(nil)) {
		return false
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss        string `json:"iss"`
		Exp        int64  `json:"exp"`
		BodySHA256 string `json:"body_sha256"`
	}
	rawHead, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	rawClaims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(rawHead, &head) != nil || json.Unmarshal(rawClaims, &claims) != nil {
		return false
	}
	sum := sha256.Sum256(body)
	return head.Alg == "HS256" && claims.Iss == "herald" && claims.Exp > time.Now().Unix() &&
		claims.BodySHA256 == hex.EncodeToString(sum[:])
}
