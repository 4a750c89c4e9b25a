package hooks

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// VerifyHerald checks Basic credentials.
func VerifyHerald(username, password string, h http.Header) bool {
	expected := "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	return subtle.ConstantTimeCompare([]byte(h.Get("Authorization")), []byte(expected)) == 1
}
