package e2e_test

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The peer itself: oidc-provider binds a token to the DPoP key of its token request's
// proof and to the client certificate of its token request, and says so in cnf; an
// unbound token's answer has no cnf.
func TestOIDCProviderBoundTokens(t *testing.T) {
	dir := t.TempDir()
	op, ca := startOIDCProvider(t, dir)
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.PS256, jose.RS256} {
		key := dpopKey(t, alg)
		token, err := op.DPoPToken(key, "read")
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		assertCnf(t, op, string(alg), token, map[string]any{"jkt": key.Thumbprint()})
	}
	certFile, keyFile := clientCert(t, ca, "bound", "bound")
	token, err := op.CertBoundToken(certFile, keyFile, "read")
	if err != nil {
		t.Fatal(err)
	}
	x5t, err := harness.CertThumbprint(certFile)
	if err != nil {
		t.Fatal(err)
	}
	assertCnf(t, op, "certificate-bound", token, map[string]any{"x5t#S256": x5t})
	assertCnf(t, op, "bearer", opToken(t, op, "read", ""), nil)
}

func dpopKey(t *testing.T, alg jose.SignatureAlgorithm) *harness.DPoPKey {
	t.Helper()
	key, err := harness.NewDPoPKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// assertCnf checks that oidc-provider's answer for token is active with cnf as want (none
// if nil).
func assertCnf(t *testing.T, op *harness.OIDCProvider, what, token string, want map[string]any) {
	t.Helper()
	answer, err := op.Introspect(token)
	if err != nil {
		t.Fatal(err)
	}
	cnf, has := answer["cnf"].(map[string]any)
	if answer["active"] != true || has != (want != nil) || len(cnf) != len(want) {
		t.Errorf("%s: answer active %v with cnf %v, want cnf %v", what, answer["active"], answer["cnf"], want)
		return
	}
	for k, v := range want {
		if cnf[k] != v {
			t.Errorf("%s: cnf[%q] = %v, want %v", what, k, cnf[k], v)
		}
	}
}
