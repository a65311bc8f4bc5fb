package loader

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// WriteFile writes data to a new file named name and returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WritePrivateKey writes key as PKCS #8 PEM, the form privateKeyFile takes.
func WritePrivateKey(t testing.TB, name string, key interface{}) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return WriteFile(t, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// WriteCert writes a self-signed client certificate and its key as PEM files.
func WriteCert(t testing.TB) (string, string) {
	t.Helper()
	certFile, keyFile, _, err := harness.SelfSignedCert(t.TempDir(), "client", ClientID)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// WriteJWKS writes pub as a JWK Set, as an authorization server's jwks_uri serves it,
// with the kid of the mock's signed answers.
func WriteJWKS(t testing.TB, name string, pub *ecdsa.PublicKey) string {
	t.Helper()
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: pub, KeyID: AnswerKID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return WriteFile(t, name, set)
}
