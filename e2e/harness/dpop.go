// A DPoP client's side (RFC 9449), signed with go-jose, a JOSE implementation independent of
// the middleware's: the key a token is bound to, and the proofs a client sends with each
// request, to the token endpoint and to the resource server.

package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DPoPType is the typ of every proof (RFC 9449 §4.2).
const DPoPType = "dpop+jwt"

// DPoPKey is a client's proof-of-possession key and the algorithm it signs proofs with.
type DPoPKey struct {
	Alg jose.SignatureAlgorithm
	Key crypto.Signer
}

// NewDPoPKey makes a key for alg: P-256 for ES256, Ed25519 for EdDSA, RSA 2048 for RS256
// and PS256 (the least RFC 9449's allow-lists take).
func NewDPoPKey(alg jose.SignatureAlgorithm) (*DPoPKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("no DPoP key for %s", alg)
	}
	if err != nil {
		return nil, err
	}
	return &DPoPKey{Alg: alg, Key: key}, nil
}

// PublicJWK is the key's public half as a JWK, what a proof's jwk header carries.
func (k *DPoPKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Key.Public()}
}

// Thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url: the cnf.jkt of the
// tokens bound to it (RFC 9449 §6.1).
func (k *DPoPKey) Thumbprint() string {
	return JWKThumbprint(k.PublicJWK())
}

// JWKThumbprint is jwk's RFC 7638 SHA-256 thumbprint, base64url.
func JWKThumbprint(jwk jose.JSONWebKey) string {
	t, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err) // only for a key type go-jose cannot hold, which NewDPoPKey never makes
	}
	return base64.RawURLEncoding.EncodeToString(t)
}

// ProofClaims are the claims of a fresh proof for a request with method htm to htu: a new
// jti, iat now, and for a resource request (token != "") the access token's hash, ath
// (RFC 9449 §4.2).
func ProofClaims(htm, htu, token string) map[string]any {
	claims := map[string]any{"jti": RandomID(), "htm": htm, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		claims["ath"] = ATH(token)
	}
	return claims
}

// ATH is base64url(SHA-256(token)), a proof's ath for token (RFC 9449 §4.2).
func ATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Proof is a fresh proof for a request with method htm to htu, with token's ath unless
// token is "".
func (k *DPoPKey) Proof(htm, htu, token string) (string, error) {
	return k.Sign(ProofClaims(htm, htu, token))
}

// Sign makes a proof of claims as RFC 9449 §4.2 has it: a compact JWS with typ dpop+jwt,
// the key's alg, and its public key in the jwk header.
func (k *DPoPKey) Sign(claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(DPoPType)
	return SignJWS(jose.SigningKey{Algorithm: k.Alg, Key: k.Key}, opts, claims)
}

// SignJWS signs claims, as JSON, with key and opts into a compact JWS.
func SignJWS(key jose.SigningKey, opts *jose.SignerOptions, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// RandomID is 16 random bytes, base64url: a jti no other proof has.
func RandomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
