package e2e_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// Discovery by the issuer key against node oidc-provider: the middleware reads the
// authorization server's metadata on its first request, RFC 8414's path first (which
// oidc-provider does not serve: 404) and then OpenID Connect's, takes the
// introspection_endpoint from it, the mTLS alias of it with a client certificate, and with
// responseFormat jwt the keys at jwks_uri, which it reads again at once when an answer is
// signed with a kid it does not know, at most once per 10 seconds. Metadata whose issuer is
// not the configured one is an endpoint failure.
func TestOIDCProviderDiscovery(t *testing.T) {
	dir := t.TempDir()
	op, ca := startOIDCProvider(t, dir,
		map[string]any{"client_id": "gw-discovery", "client_secret": "gw-discovery-secret"},
		map[string]any{"client_id": "gw-discovery-jwt", "client_secret": "gw-discovery-secret",
			"introspection_signed_response_alg": "ES256"},
		map[string]any{"client_id": "gw-discovery-tls", "token_endpoint_auth_method": "tls_client_auth",
			"tls_client_auth_subject_dn": "CN=gw-discovery-tls"},
	)
	certFile, keyFile := clientCert(t, ca, "gw-discovery-tls", "gw-discovery-tls")

	// What the middleware is to find there.
	metadata, err := op.Discovery()
	if err != nil {
		t.Fatal(err)
	}
	aliases, _ := metadata["mtls_endpoint_aliases"].(map[string]any)
	for member, want := range map[string]any{
		"issuer":                 op.Issuer,
		"introspection_endpoint": op.Issuer + harness.OPIntrospectionPath,
		"jwks_uri":               op.Issuer + harness.OPJWKSPath,
	} {
		if metadata[member] != want {
			t.Fatalf("oidc-provider's discovery document has %s %v, want %v", member, metadata[member], want)
		}
	}
	if got, want := aliases["introspection_endpoint"], op.TLSURL+harness.OPIntrospectionPath; got != want {
		t.Fatalf("oidc-provider's mtls_endpoint_aliases has introspection_endpoint %v, want %v", got, want)
	}

	v := &jwtVerifier{}
	v.setKeys(t, opJWKS(t, op))
	rfc8414 := counter(t, op, harness.OPMetadataPath)
	openid := counter(t, op, harness.OPDiscoveryPath)
	jwks := counter(t, op, harness.OPJWKSPath)
	calls := counter(t, op, harness.OPIntrospectionPath)

	issuer := fmt.Sprintf("issuer: %q\n", op.Issuer)
	// The same server spelled otherwise: its metadata names 127.0.0.1.
	otherIssuer := strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1)
	secret := "clientSecret: gw-discovery-secret\n"
	routes := map[string]string{
		"discovery.localhost": issuer + "clientId: gw-discovery\n" + secret + opForward,
		"signed.localhost": issuer + "clientId: gw-discovery-jwt\n" + secret + "responseFormat: jwt\n" +
			"forwardIntrospectionJWT: X-Introspection-JWT\n" + opForward,
		"mismatch.localhost": fmt.Sprintf("issuer: %q\nclientId: gw-discovery\n", otherIssuer) + secret + opForward,
		"mtls.localhost": issuer + fmt.Sprintf("authMethod: tls_client_auth\nclientId: gw-discovery-tls\n"+
			"tlsCertFile: %q\ntlsKeyFile: %q\ncaFile: %q\n", certFile, keyFile, ca.CertFile) + opForward,
	}
	for host := range routes {
		routes[host] += "\nforwardAuthorization: false"
	}
	tr := startTraefik(t, harness.Routes(serve(t, v.backend()), routes))
	for host := range routes {
		waitRouted(t, tr, host)
	}
	admitted := map[string]string{"X-Auth-Client": harness.OPTokenClientID, "X-Auth-Scope": "read",
		"X-Auth-Audience": harness.OPResource, "Authorization": ""}
	var tokens []string
	token := func() string {
		tok := opToken(t, op, "read", "")
		tokens = append(tokens, tok)
		return tok
	}

	t.Run("metadata", func(t *testing.T) {
		assertAdmitted(t, "discovery", send(t, tr, "discovery.localhost", "/", token()), admitted)
		assertCount(t, "RFC 8414 metadata reads", rfc8414(), 1)
		assertCount(t, "OpenID Connect discovery reads", openid(), 1)
		assertCount(t, "introspection calls", calls(), 1)
		// Metadata is kept (5 minutes): the next token costs its introspection call only.
		assertAdmitted(t, "discovery", send(t, tr, "discovery.localhost", "/", token()), admitted)
		assertCount(t, "metadata reads", rfc8414()+openid(), 0)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("keys from jwks_uri", func(t *testing.T) {
		a := send(t, tr, "signed.localhost", "/", token())
		assertAdmitted(t, "signed", a, signedBy(admitted, op, "ec-1"))
		assertCount(t, "jwks reads", jwks(), 1)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("key rotation", func(t *testing.T) {
		if err := op.RotateKeys(); err != nil {
			t.Fatal(err)
		}
		v.setKeys(t, opJWKS(t, op))
		jwks() // the backend's read is not the middleware's
		assertAdmitted(t, "signed", send(t, tr, "signed.localhost", "/", token()), signedBy(admitted, op, "ec-2"))
		reread := time.Now()
		assertCount(t, "jwks reads after the rotation", jwks(), 1)
		assertCount(t, "introspection calls", calls(), 1)

		// Rotated again at once: a kid unknown again, but the keys were just read. The
		// answer cannot be verified (503) and the keys are not read again yet.
		if err := op.RotateKeys(); err != nil {
			t.Fatal(err)
		}
		a := send(t, tr, "signed.localhost", "/", token())
		if since := time.Since(reread); since >= 10*time.Second {
			t.Skipf("%v passed since the last read of the keys, so a new one is allowed; this machine is too slow for this check", since)
		}
		assertRefused(t, a, http.StatusServiceUnavailable, "")
		assertCount(t, "jwks reads within 10 s of the last", jwks(), 0)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		assertRefused(t, send(t, tr, "mismatch.localhost", "/", token()), http.StatusServiceUnavailable, "")
		assertFailureLogged(t, tr, "mismatch.localhost", "answering 503: ")
		assertFailureLogged(t, tr, "mismatch.localhost", op.Issuer)
		assertCount(t, "introspection calls", calls(), 0)
	})
	t.Run("mTLS endpoint alias", func(t *testing.T) {
		before := opCalls(t, op)
		assertAdmitted(t, "mtls", send(t, tr, "mtls.localhost", "/", token()), admitted)
		after := opCalls(t, op)
		https := after.HTTPS[harness.OPIntrospectionPath] - before.HTTPS[harness.OPIntrospectionPath]
		plain := after.HTTP[harness.OPIntrospectionPath] - before.HTTP[harness.OPIntrospectionPath]
		if https != 1 || plain != 0 {
			t.Errorf("introspection calls over HTTPS %d and over HTTP %d, want 1 and 0 (the mtls_endpoint_aliases one)", https, plain)
		}
	})
	assertLogHoldsNo(t, tr, append(tokens, "gw-discovery-secret", pemLine(t, keyFile))...)
}

// signedBy is admitted with the verified signed answer of the discovery route's client,
// signed with ES256 under kid.
func signedBy(admitted map[string]string, op *harness.OIDCProvider, kid string) map[string]string {
	headers := map[string]string{verifiedHeader: fmt.Sprintf("ES256 %s token-introspection+jwt iss=%s aud=gw-discovery-jwt active client_id=%s",
		kid, op.Issuer, harness.OPTokenClientID)}
	for name, value := range admitted {
		headers[name] = value
	}
	return headers
}

// Discovery against Ory Hydra v2.3.0, with its public URL as the issuer. Hydra serves
// OpenID Connect discovery (RFC 8414's path is a 404), and its document has no
// introspection_endpoint: Hydra introspects on its admin port only. So the middleware
// cannot find one: 503, and the log names the missing member.
func TestHydraDiscovery(t *testing.T) {
	hydra := startHydra(t)
	client := hydra.createClient(t, "read")
	token := hydra.token(t, client, "read")
	tr := startRoutes(t, map[string]string{
		"hydra.localhost": fmt.Sprintf("issuer: %q\nauthMethod: none\nforwardHeaders: {X-Auth-Subject: sub}", hydra.public),
	})
	assertRefused(t, send(t, tr, "hydra.localhost", "/", token), http.StatusServiceUnavailable, "")
	assertFailureLogged(t, tr, "hydra.localhost", "answering 503: ")
	assertFailureLogged(t, tr, "hydra.localhost", "introspection_endpoint")
	assertLogHoldsNo(t, tr, token, client.secret)
}
