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
// authorization server's metadata on its first request, at RFC 8414's path (which
// oidc-provider serves, so OpenID Connect's is not read), takes the
// introspection_endpoint from it, the mTLS alias of it with a client certificate, and with
// responseFormat jwt the keys at jwks_uri, which it reads again at once when an answer is
// signed with a kid it does not know, at most once per 10 seconds. Metadata whose issuer is
// not the configured one is an endpoint failure.
func TestOIDCProviderDiscovery(t *testing.T) {
	dir := t.TempDir()
	// An https issuer: the middleware presents a client certificate only over https, so
	// tlsCertFile needs an https issuer (the check New makes on endpoint, made on issuer).
	op, ca := startOIDCProviderWith(t, dir, harness.OPConfig{HTTPSIssuer: true, Clients: []map[string]any{
		{"client_id": "gw-discovery", "client_secret": "gw-discovery-secret"},
		{"client_id": "gw-discovery-jwt", "client_secret": "gw-discovery-secret", "introspection_signed_response_alg": "ES256"},
		{"client_id": "gw-discovery-tls", "token_endpoint_auth_method": "tls_client_auth",
			"tls_client_auth_subject_dn": "CN=gw-discovery-tls"},
	}})
	certFile, keyFile := clientCert(t, ca, "gw-discovery-tls", "gw-discovery-tls")

	// What the middleware is to find: oidc-provider builds the other URLs of its metadata
	// from the request, so they are those of the listener it is read from, the issuer's;
	// which listener each call reached says which URL the middleware took.
	metadata, err := op.Discovery()
	if err != nil {
		t.Fatal(err)
	}
	aliases, _ := metadata["mtls_endpoint_aliases"].(map[string]any)
	if metadata["issuer"] != op.Issuer || aliases["introspection_endpoint"] != op.MTLSURL+harness.OPIntrospectionPath {
		t.Fatalf("oidc-provider's metadata has issuer %v and mtls_endpoint_aliases %v, want %s and the mtls listener",
			metadata["issuer"], aliases, op.Issuer)
	}

	v := &jwtVerifier{}
	v.setKeys(t, opJWKS(t, op))
	rfc8414 := counter(t, op, harness.OPMetadataPath)
	openid := counter(t, op, harness.OPDiscoveryPath)
	jwks := counter(t, op, harness.OPJWKSPath)
	calls := counter(t, op, harness.OPIntrospectionPath)

	issuer := fmt.Sprintf("issuer: %q\ncaFile: %q\n", op.Issuer, ca.CertFile)
	// The same server spelled otherwise (its certificate is for both): its metadata names
	// 127.0.0.1.
	otherIssuer := strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1)
	secret := "clientSecret: gw-discovery-secret\n"
	routes := map[string]string{
		"discovery.localhost": issuer + "clientId: gw-discovery\n" + secret + opForward,
		"signed.localhost": issuer + "clientId: gw-discovery-jwt\n" + secret + "responseFormat: jwt\n" +
			"forwardIntrospectionJWT: X-Introspection-JWT\n" + opForward,
		"mismatch.localhost": fmt.Sprintf("issuer: %q\ncaFile: %q\nclientId: gw-discovery\n", otherIssuer, ca.CertFile) + secret + opForward,
		"mtls.localhost": issuer + fmt.Sprintf("authMethod: tls_client_auth\nclientId: gw-discovery-tls\n"+
			"tlsCertFile: %q\ntlsKeyFile: %q\n", certFile, keyFile) + opForward,
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
		before := opCalls(t, op)
		assertAdmitted(t, "discovery", send(t, tr, "discovery.localhost", "/", token()), admitted)
		assertCount(t, "RFC 8414 metadata reads", rfc8414(), 1)
		assertCount(t, "OpenID Connect discovery reads", openid(), 0)
		assertCount(t, "introspection calls", calls(), 1)
		assertCount(t, "introspection calls to the issuer's listener",
			opCalls(t, op).HTTPS[harness.OPIntrospectionPath]-before.HTTPS[harness.OPIntrospectionPath], 1)
		// Metadata is kept (5 minutes): the next token costs its introspection call only.
		assertAdmitted(t, "discovery", send(t, tr, "discovery.localhost", "/", token()), admitted)
		assertCount(t, "metadata reads", rfc8414()+openid(), 0)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("keys from jwks_uri", func(t *testing.T) {
		a := send(t, tr, "signed.localhost", "/", token())
		assertAdmitted(t, "signed", a, signedBy(admitted, op, "ec-1"))
		// Another client: another state of its own, which reads the metadata for itself.
		assertCount(t, "metadata reads", rfc8414()+openid(), 1)
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
		assertFailureLogged(t, tr, "signed.localhost",
			`answering 503: the signed answer's signature (alg ES256, kid "ec-3") matches no key in the keys at the issuer's jwks_uri`)
		assertCount(t, "jwks reads within 10 s of the last", jwks(), 0)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		assertRefused(t, send(t, tr, "mismatch.localhost", "/", token()), http.StatusServiceUnavailable, "")
		assertFailureLogged(t, tr, "mismatch.localhost", fmt.Sprintf(
			"answering 503: reading the metadata of issuer %s: GET %s/.well-known/oauth-authorization-server: it names issuer %q, "+
				"which must be identical to issuer", otherIssuer, otherIssuer, op.Issuer))
		assertCount(t, "introspection calls", calls(), 0)
	})
	t.Run("mTLS endpoint alias", func(t *testing.T) {
		before := opCalls(t, op)
		assertAdmitted(t, "mtls", send(t, tr, "mtls.localhost", "/", token()), admitted)
		after := opCalls(t, op)
		alias := after.MTLS[harness.OPIntrospectionPath] - before.MTLS[harness.OPIntrospectionPath]
		all := after.Of(harness.OPIntrospectionPath) - before.Of(harness.OPIntrospectionPath)
		if alias != 1 || all != 1 {
			t.Errorf("introspection calls to the mtls_endpoint_aliases listener: %d of %d, want 1 of 1", alias, all)
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
// OpenID Connect discovery only (RFC 8414's path is a 404, so the middleware reads the
// OpenID Connect document, which this failure is about), and that document has no
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
	assertFailureLogged(t, tr, "hydra.localhost",
		fmt.Sprintf("answering 503: the metadata of issuer %s has no introspection_endpoint", hydra.public))
	assertLogHoldsNo(t, tr, token, client.secret)
}
