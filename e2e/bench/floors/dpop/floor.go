// Package floordpop is the benchmark's "floor, DPoP proof" row: the least a check of a DPoP
// proof (RFC 9449 §4.3) can do under yaegi. It splits the DPoP header's compact JWS,
// decodes its JOSE header, reads the P-256 public key of its jwk and verifies the ES256
// signature (SHA-256 and ecdsa.Verify), then calls the next handler. It reads no claim,
// no token and no cache, and accepts a replayed proof: it is not a middleware to use, but
// the figure the plugin's DPoP row is read against.
package floordpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
)

// Config is empty: the floor has nothing to configure.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

// joseHeader is what the floor reads of the proof's JOSE header.
type joseHeader struct {
	Alg string `json:"alg"`
	JWK jwk    `json:"jwk"`
}

type jwk struct {
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

type floor struct{ next http.Handler }

// New builds the floor.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &floor{next: next}, nil
}

// ServeHTTP is one function: under yaegi each call of a helper costs more than its lines.
func (f *floor) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	parts := strings.Split(req.Header.Get("DPoP"), ".")
	var header joseHeader
	verified := false
	if len(parts) == 3 {
		raw, err := base64.RawURLEncoding.DecodeString(parts[0])
		sig, errSig := base64.RawURLEncoding.DecodeString(parts[2])
		if err == nil && errSig == nil && len(sig) == 64 && json.Unmarshal(raw, &header) == nil &&
			header.Alg == "ES256" && header.JWK.Crv == "P-256" {
			x, errX := base64.RawURLEncoding.DecodeString(header.JWK.X)
			y, errY := base64.RawURLEncoding.DecodeString(header.JWK.Y)
			//lint:ignore SA1019 yaegi v0.16.1 has Go 1.22's standard library: no ecdsa.ParseUncompressedPublicKey
			key := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
			digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			verified = errX == nil && errY == nil &&
				ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}
	}
	if !verified {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	f.next.ServeHTTP(rw, req)
}
