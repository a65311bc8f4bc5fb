package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

// The middleware against node oidc-provider 9.13.3 (e2e/oidc-provider/server.mjs): real
// client_credentials tokens for a resource server (so they carry scopes and an aud), its
// introspection endpoint with every client authentication it offers, its signed answers,
// its revocation, and its requests counted per path.

// A client ID and a secret full of RFC 3986's reserved characters, `%` and a space:
// RFC 6749 §2.3.1 has them form-urlencoded before Basic, and oidc-provider decodes them
// (decodeURIComponent after `+` → space): unencoded, `%` fails to decode (400) and `+`
// turns into a space.
const (
	opBasicID     = "gw/basic:1?#[]@!$&'()*+,;=% x"
	opBasicSecret = "s3:cr/t?#[]@!$&'()*+,;=%20 y"
	opPostID      = "gw-post"
	opPostSecret  = "p0st:/?#[]@!$&'()*+,;=% z"
	opWrongSecret = "wr0ng:/?#[]@!$&'()*+,;=% w"
)

const (
	opInvalid = `Bearer realm="traefik", error="invalid_token"`
	// The identity headers every route here sets: client_credentials tokens have no sub.
	opForward = "forwardHeaders: {X-Auth-Client: client_id, X-Auth-Scope: scope, X-Auth-Audience: aud}"
)

// Every client authentication method the plugin has that oidc-provider takes at its
// introspection endpoint (for all endpoints oidc-provider 9 uses the client's
// token_endpoint_auth_method; it has no introspection_endpoint_auth_method), and a wrong
// credential of each kind: oidc-provider's 401 is an endpoint failure, 503 with no
// challenge, and the log names the keys to check, never the secret. Each case introspects a
// new token, so each makes exactly one call.
func TestOIDCProviderAuthMethods(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := loader.WritePrivateKey(t, "rsa.pem", rsaKey)
	ecFile := loader.WritePrivateKey(t, "ec.pem", ecKey)
	otherRSAFile, _ := writeRSAKey(t, "other-rsa.pem") // not registered, under the same kid
	op, ca := startOIDCProvider(t, dir,
		map[string]any{"client_id": opBasicID, "client_secret": opBasicSecret, "token_endpoint_auth_method": "client_secret_basic"},
		map[string]any{"client_id": opPostID, "client_secret": opPostSecret, "token_endpoint_auth_method": "client_secret_post"},
		// One client per algorithm, which oidc-provider holds the assertion to.
		map[string]any{"client_id": "gw-rs256", "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "RS256", "jwks": publicJWKS(t, jwk(&rsaKey.PublicKey, "rsa"))},
		map[string]any{"client_id": "gw-ps256", "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "PS256", "jwks": publicJWKS(t, jwk(&rsaKey.PublicKey, "rsa"))},
		map[string]any{"client_id": "gw-es256", "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256", "jwks": publicJWKS(t, jwk(&ecKey.PublicKey, "ec"))},
		map[string]any{"client_id": "gw-tls", "token_endpoint_auth_method": "tls_client_auth",
			"tls_client_auth_subject_dn": "CN=gw-tls"},
	)
	certFile, keyFile := clientCert(t, ca, "gw-tls", "gw-tls")
	// From the same CA, so the TLS handshake passes, for another subject.
	otherCertFile, otherKeyFile := clientCert(t, ca, "gw-other", "gw-other")

	endpoint := fmt.Sprintf("endpoint: %q\n", op.Issuer+harness.OPIntrospectionPath)
	tlsEndpoint := fmt.Sprintf("endpoint: %q\ncaFile: %q\n", op.TLSURL+harness.OPIntrospectionPath, ca.CertFile)
	secret := func(method, id, secret string) string {
		return endpoint + fmt.Sprintf("authMethod: %s\nclientId: %q\nclientSecret: %q", method, id, secret)
	}
	privateKeyJWT := func(keyFile, alg, kid string) string {
		return endpoint + fmt.Sprintf("authMethod: private_key_jwt\nclientId: gw-%s\n"+
			"privateKeyFile: %q\nsigningAlg: %s\nkeyId: %s", strings.ToLower(alg), keyFile, alg, kid)
	}
	tlsClientAuth := func(certFile, keyFile string) string {
		return tlsEndpoint + fmt.Sprintf("authMethod: tls_client_auth\nclientId: gw-tls\ntlsCertFile: %q\ntlsKeyFile: %q",
			certFile, keyFile)
	}
	const (
		secretKeys = "check clientId, clientSecret and authMethod"
		jwtKeys    = "check clientId, privateKeyFile, keyId and assertionAudience"
		tlsKeys    = "check clientId, tlsCertFile and tlsKeyFile"
	)
	// In order: a refused case runs before the admitted one that shares its failure log
	// (same endpoint and clientId), whose success ends the run of failures, so that every
	// refused case gets its own log line.
	cases := []struct {
		host, options, client string
		refusedKeys           string // "" for admitted
	}{
		{"basic-wrong.localhost", secret("client_secret_basic", opBasicID, opWrongSecret), "", secretKeys},
		{"basic.localhost", secret("client_secret_basic", opBasicID, opBasicSecret), opBasicID, ""},
		// The client is registered with a secret; a public client's call carries none.
		{"none.localhost", endpoint + fmt.Sprintf("authMethod: none\nclientId: %q", opBasicID), "", secretKeys},
		{"post-wrong.localhost", secret("client_secret_post", opPostID, opWrongSecret), "", secretKeys},
		{"post.localhost", secret("client_secret_post", opPostID, opPostSecret), opPostID, ""},
		// assertionAudience unset: the endpoint URL, which oidc-provider accepts.
		{"jwt-wrong.localhost", privateKeyJWT(otherRSAFile, "RS256", "rsa"), "", jwtKeys},
		{"rs256.localhost", privateKeyJWT(rsaFile, "RS256", "rsa"), "gw-rs256", ""},
		{"ps256.localhost", privateKeyJWT(rsaFile, "PS256", "rsa"), "gw-ps256", ""},
		{"es256.localhost", privateKeyJWT(ecFile, "ES256", "ec"), "gw-es256", ""},
		{"tls-wrong.localhost", tlsClientAuth(otherCertFile, otherKeyFile), "", tlsKeys},
		{"tls.localhost", tlsClientAuth(certFile, keyFile), "gw-tls", ""},
	}
	routes := map[string]string{}
	for _, c := range cases {
		routes[c.host] = c.options + "\n" + opForward + "\nforwardAuthorization: false"
	}
	tr := startRoutes(t, routes)

	calls := counter(t, op, harness.OPIntrospectionPath)
	tokens := []string{}
	for _, c := range cases {
		token := opToken(t, op, "read", "")
		tokens = append(tokens, token)
		a := send(t, tr, c.host, "/", token)
		if c.refusedKeys == "" {
			assertAdmitted(t, c.host, a, map[string]string{"X-Auth-Client": harness.OPTokenClientID,
				"X-Auth-Scope": "read", "X-Auth-Audience": harness.OPResource, "Authorization": ""})
		} else {
			assertRefused(t, a, http.StatusServiceUnavailable, "")
			assertFailureLogged(t, tr, c.host, "the endpoint refused our client credentials (401): "+c.refusedKeys)
		}
		assertCount(t, c.host+": introspection calls", calls(), 1)
	}
	// Over HTTPS, the tls_client_auth cases only.
	if got := opCalls(t, op).HTTPS[harness.OPIntrospectionPath]; got != 2 {
		t.Errorf("introspection calls over HTTPS = %d, want 2 (tls and tls-wrong)", got)
	}

	secrets := append(tokens, opBasicSecret, opPostSecret, opWrongSecret, url.QueryEscape(opBasicSecret),
		url.QueryEscape(opWrongSecret), pemLine(t, rsaFile), pemLine(t, ecFile), pemLine(t, otherRSAFile),
		pemLine(t, keyFile), pemLine(t, otherKeyFile))
	assertLogHoldsNo(t, tr, secrets...)
}

// client_secret_jwt (RFC 7523 §2.2 with an HMAC key, OpenID Connect Core §9): the
// assertion is signed with the client secret, by default with HS256, and its aud is by
// default the endpoint URL, which oidc-provider accepts. A wrong secret signs an assertion
// oidc-provider refuses: 503, and the log names the keys to check.
func TestOIDCProviderClientSecretJWT(t *testing.T) {
	// HS512 wants a key of at least 512 bits (RFC 7518 §3.2): 64 bytes and more.
	const (
		secret = "client-secret-jwt:0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		wrong  = "client-secret-jwt:ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvutsrqponmlkjihgfedcba9876543210"
	)
	// One client per algorithm, which oidc-provider holds the assertion to.
	client := func(alg string) map[string]any {
		return map[string]any{"client_id": "gw-" + strings.ToLower(alg), "client_secret": secret,
			"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": alg}
	}
	op, _ := startOIDCProvider(t, t.TempDir(), client("HS256"), client("HS512"))
	options := func(client, secret, more string) string {
		return fmt.Sprintf("endpoint: %q\nauthMethod: client_secret_jwt\nclientId: %s\nclientSecret: %q\n%s\n"+
			"forwardAuthorization: false\n%s", op.Issuer+harness.OPIntrospectionPath, client, secret, opForward, more)
	}
	tr := startRoutes(t, map[string]string{
		"hs256.localhost": options("gw-hs256", secret, ""), // signingAlg unset: HS256
		"hs512.localhost": options("gw-hs512", secret, "signingAlg: HS512"),
		"wrong.localhost": options("gw-hs256", wrong, ""),
	})
	calls := counter(t, op, harness.OPIntrospectionPath)
	var tokens []string
	for _, host := range []string{"wrong.localhost", "hs256.localhost", "hs512.localhost"} {
		token := opToken(t, op, "read", "")
		tokens = append(tokens, token)
		a := send(t, tr, host, "/", token)
		if host == "wrong.localhost" {
			assertRefused(t, a, http.StatusServiceUnavailable, "")
			assertFailureLogged(t, tr, host,
				"the endpoint refused our client credentials (401): check clientId, clientSecret, signingAlg and assertionAudience")
		} else {
			assertAdmitted(t, host, a, map[string]string{"X-Auth-Client": harness.OPTokenClientID,
				"X-Auth-Scope": "read", "X-Auth-Audience": harness.OPResource, "Authorization": ""})
		}
		assertCount(t, host+": introspection calls", calls(), 1)
	}
	assertLogHoldsNo(t, tr, append(tokens, secret, wrong)...)
}

// self_signed_tls_client_auth (RFC 8705 §2.2): a self-signed certificate registered in the
// client's jwks (x5c) authenticates over the HTTPS listener, whose own certificate caFile
// trusts; client_id names the client. Another self-signed certificate is refused: 503.
func TestOIDCProviderSelfSignedTLSClientAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert, err := harness.SelfSignedCert(dir, "self-signed", "gw-self-signed")
	if err != nil {
		t.Fatal(err)
	}
	otherCertFile, otherKeyFile, _, err := harness.SelfSignedCert(dir, "other-self-signed", "gw-self-signed")
	if err != nil {
		t.Fatal(err)
	}
	registered := jose.JSONWebKey{Key: cert.PublicKey, Use: "sig", Certificates: []*x509.Certificate{cert}}
	op, ca := startOIDCProvider(t, dir, map[string]any{"client_id": "gw-self-signed",
		"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": publicJWKS(t, registered)})
	options := func(certFile, keyFile string) string {
		return fmt.Sprintf("endpoint: %q\ncaFile: %q\nauthMethod: self_signed_tls_client_auth\nclientId: gw-self-signed\n"+
			"tlsCertFile: %q\ntlsKeyFile: %q\n%s\nforwardAuthorization: false",
			op.TLSURL+harness.OPIntrospectionPath, ca.CertFile, certFile, keyFile, opForward)
	}
	tr := startRoutes(t, map[string]string{
		"selfsigned.localhost": options(certFile, keyFile),
		"wrong.localhost":      options(otherCertFile, otherKeyFile),
	})
	calls := counter(t, op, harness.OPIntrospectionPath)
	token := opToken(t, op, "read", "")
	assertRefused(t, send(t, tr, "wrong.localhost", "/", token), http.StatusServiceUnavailable, "")
	assertFailureLogged(t, tr, "wrong.localhost", "the endpoint refused our client credentials (401): check clientId, tlsCertFile and tlsKeyFile")
	assertCount(t, "wrong: introspection calls", calls(), 1)
	assertAdmitted(t, "selfsigned", send(t, tr, "selfsigned.localhost", "/", token), map[string]string{
		"X-Auth-Client": harness.OPTokenClientID, "X-Auth-Scope": "read", "Authorization": ""})
	assertCount(t, "selfsigned: introspection calls", calls(), 1)
	if got := opCalls(t, op).HTTPS[harness.OPIntrospectionPath]; got != 2 {
		t.Errorf("introspection calls over HTTPS = %d, want 2", got)
	}
	assertLogHoldsNo(t, tr, token, pemLine(t, keyFile), pemLine(t, otherKeyFile))
}

// Answers signed as RFC 9701 says with each algorithm oidc-provider offers for them
// (introspection_signed_response_alg), checked by the middleware with the keys read from
// the server's jwks_uri, and forwarded in X-Introspection-JWT to a backend that verifies
// them again with those keys. With another server's keys the answer is an endpoint failure.
func TestOIDCProviderSignedAnswers(t *testing.T) {
	dir := t.TempDir()
	algs := []struct{ alg, kid string }{{"RS256", "rsa-1"}, {"PS256", "rsa-1"}, {"ES256", "ec-1"}}
	var clients []map[string]any
	for _, a := range algs {
		clients = append(clients, map[string]any{"client_id": "gw-jwt-" + strings.ToLower(a.alg),
			"client_secret": "gw-jwt-secret", "introspection_signed_response_alg": a.alg})
	}
	op, _ := startOIDCProvider(t, dir, clients...)
	jwks := opJWKS(t, op)
	keysFile := loader.WriteFile(t, "jwks.json", jwks)
	_, otherKey := writeRSAKey(t, "other.pem")
	otherKeysFile := loader.WriteFile(t, "other-jwks.json", publicJWKSBytes(t, jwk(otherKey, "rsa-1")))

	signed := func(client, keysFile string) string {
		return fmt.Sprintf("endpoint: %q\nclientId: %s\nclientSecret: gw-jwt-secret\nresponseFormat: jwt\n"+
			"responseKeysFile: %q\nissuers: [%q]\nforwardIntrospectionJWT: X-Introspection-JWT\n%s\nforwardAuthorization: false",
			op.Issuer+harness.OPIntrospectionPath, client, keysFile, op.Issuer, opForward)
	}
	routes := map[string]string{"otherkeys.localhost": signed("gw-jwt-ps256", otherKeysFile)}
	for _, a := range algs {
		routes[strings.ToLower(a.alg)+".localhost"] = signed("gw-jwt-"+strings.ToLower(a.alg), keysFile)
	}
	v := &jwtVerifier{}
	v.setKeys(t, jwks)
	tr := startTraefik(t, harness.Routes(serve(t, v.backend()), routes))
	for host := range routes {
		waitRouted(t, tr, host)
	}

	calls := counter(t, op, harness.OPIntrospectionPath)
	var tokens []string
	for _, a := range algs {
		token := opToken(t, op, "read write", "")
		tokens = append(tokens, token)
		host := strings.ToLower(a.alg) + ".localhost"
		client := "gw-jwt-" + strings.ToLower(a.alg)
		assertAdmitted(t, host, send(t, tr, host, "/", token), map[string]string{
			"X-Auth-Client": harness.OPTokenClientID, "X-Auth-Scope": "read write", "Authorization": "",
			verifiedHeader: fmt.Sprintf("%s %s token-introspection+jwt iss=%s aud=%s active client_id=%s",
				a.alg, a.kid, op.Issuer, client, harness.OPTokenClientID),
		})
		assertCount(t, host+": introspection calls", calls(), 1)
	}
	token := opToken(t, op, "read", "")
	tokens = append(tokens, token)
	assertRefused(t, send(t, tr, "otherkeys.localhost", "/", token), http.StatusServiceUnavailable, "")
	assertCount(t, "otherkeys: introspection calls", calls(), 1)
	assertFailureLogged(t, tr, "otherkeys.localhost", "answering 503")
	assertLogHoldsNo(t, tr, tokens...)
}

// The route's policy on oidc-provider's answers, which carry the token's scope, its aud (the
// resource server it was issued for) and the issuer: each check passes and refuses, on a
// fresh answer and on a cached one. Then revocation within and after cacheTTL, and a
// JWT-shaped token, which oidc-provider will not introspect.
func TestOIDCProviderPolicy(t *testing.T) {
	op, _ := startOIDCProvider(t, t.TempDir(),
		map[string]any{"client_id": "gw-policy", "client_secret": "gw-policy-secret"})
	otherIssuer := strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1) // the same server, spelled otherwise
	options := func(more string) string {
		return fmt.Sprintf("endpoint: %q\nclientId: gw-policy\nclientSecret: gw-policy-secret\n%s\n%s",
			op.Issuer+harness.OPIntrospectionPath, opForward, more)
	}
	tr := startRoutes(t, map[string]string{
		"scope.localhost":       options("requiredScopes: [write]"),
		"audience.localhost":    options(fmt.Sprintf("audiences: [%q]", harness.OPResource)),
		"issuer.localhost":      options(fmt.Sprintf("issuers: [%q]", op.Issuer)),
		"otherissuer.localhost": options(fmt.Sprintf("issuers: [%q]", otherIssuer)),
		"revoke.localhost":      options("cacheTTL: 5s"),
		"structured.localhost":  options("negativeCacheTTL: 10m"),
	})
	calls := counter(t, op, harness.OPIntrospectionPath)
	readToken := opToken(t, op, "read", "")
	bothToken := opToken(t, op, "read write", "")
	otherToken := opToken(t, op, "read write", harness.OPOtherResource)
	admitted := func(token, scope, audience string) map[string]string {
		return map[string]string{"X-Auth-Client": harness.OPTokenClientID, "X-Auth-Scope": scope,
			"X-Auth-Audience": audience, "Authorization": "Bearer " + token}
	}

	t.Run("scopes", func(t *testing.T) {
		assertRefused(t, send(t, tr, "scope.localhost", "/", readToken), http.StatusForbidden,
			`Bearer realm="traefik", error="insufficient_scope", scope="write"`)
		assertCount(t, "introspection calls", calls(), 1)
		assertAdmitted(t, "scope", send(t, tr, "scope.localhost", "/", bothToken), admitted(bothToken, "read write", harness.OPResource))
		assertCount(t, "introspection calls", calls(), 1)
	})
	// From here on, answers for readToken and bothToken are cached: every route judges them
	// by its own policy without a call.
	t.Run("audiences", func(t *testing.T) {
		assertAdmitted(t, "audience", send(t, tr, "audience.localhost", "/", bothToken), admitted(bothToken, "read write", harness.OPResource))
		assertCount(t, "introspection calls", calls(), 0)
		assertRefused(t, send(t, tr, "audience.localhost", "/", otherToken), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls", calls(), 1)
	})
	t.Run("issuers", func(t *testing.T) {
		assertAdmitted(t, "issuer", send(t, tr, "issuer.localhost", "/", readToken), admitted(readToken, "read", harness.OPResource))
		assertRefused(t, send(t, tr, "otherissuer.localhost", "/", readToken), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls", calls(), 0)
	})
	t.Run("revoked token", func(t *testing.T) {
		token := opToken(t, op, "read", "")
		assertAdmitted(t, "revoke", send(t, tr, "revoke.localhost", "/", token), admitted(token, "read", harness.OPResource))
		assertCount(t, "introspection calls", calls(), 1)
		if err := op.Revoke(token); err != nil {
			t.Fatal(err)
		}
		// RFC 7662 §4: cacheTTL is the revocation window; within it the cached answer stands.
		assertAdmitted(t, "revoke", send(t, tr, "revoke.localhost", "/", token), admitted(token, "read", harness.OPResource))
		assertCount(t, "introspection calls", calls(), 0)
		// Once it has run out, one call learns that the token is no longer active.
		assertRefused(t, sendUntilRefused(t, tr, "revoke.localhost", token), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls", calls(), 1)
		assertRefused(t, send(t, tr, "revoke.localhost", "/", token), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls", calls(), 0)
	})
	t.Run("JWT-shaped token", func(t *testing.T) {
		// Three base64url parts with a JOSE header: oidc-provider answers 400
		// {"error":"unsupported_token_type"} and does not look it up. That is a verdict on
		// the token (401), not an outage (503), and it is cached as one.
		token := b64(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`) + "." + b64(`{"iss":"`+op.Issuer+`","sub":"x"}`) + "." + b64("signature")
		assertRefused(t, send(t, tr, "structured.localhost", "/", token), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls", calls(), 1)
		assertRefused(t, send(t, tr, "structured.localhost", "/", token), http.StatusUnauthorized, opInvalid)
		assertCount(t, "introspection calls within negativeCacheTTL", calls(), 0)
	})

	if strings.Contains(tr.Logs(), "introspection failed") {
		t.Error("traefik logged an introspection failure; every answer here was a verdict on a token")
	}
	assertLogHoldsNo(t, tr, readToken, bothToken, otherToken, "gw-policy-secret")
}

// startOIDCProvider runs the node oidc-provider with clients registered, and a new test CA
// for its HTTPS listeners, until the test ends. Its output is printed if the test fails.
func startOIDCProvider(t *testing.T, dir string, clients ...map[string]any) (*harness.OIDCProvider, *harness.TestCA) {
	t.Helper()
	return startOIDCProviderWith(t, dir, harness.OPConfig{Clients: clients})
}

// startOIDCProviderWith is startOIDCProvider with the whole configuration.
func startOIDCProviderWith(t *testing.T, dir string, config harness.OPConfig) (*harness.OIDCProvider, *harness.TestCA) {
	t.Helper()
	ca, err := harness.NewTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	op, err := harness.StartOIDCProvider(peer(t, "OIDC_PROVIDER_DIR"), dir, ca, config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("oidc-provider output:\n%s", op.Output())
		}
	})
	return op, ca
}

// opToken asks oidc-provider for a client_credentials token with scope for resource ("" for
// the default one).
func opToken(t *testing.T, op *harness.OIDCProvider, scope, resource string) string {
	t.Helper()
	token, err := op.Token(scope, resource)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func opCalls(t *testing.T, op *harness.OIDCProvider) harness.OPCalls {
	t.Helper()
	c, err := op.Calls()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func opJWKS(t *testing.T, op *harness.OIDCProvider) []byte {
	t.Helper()
	jwks, err := op.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return jwks
}

// counter returns a function that says how many requests for path oidc-provider got since
// it last said, or since counter was called.
func counter(t *testing.T, op *harness.OIDCProvider, path string) func() int {
	t.Helper()
	last := opCalls(t, op).Of(path)
	return func() int {
		t.Helper()
		now := opCalls(t, op).Of(path)
		n := now - last
		last = now
		return n
	}
}

func assertCount(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// assertFailureLogged checks that Traefik logged an introspection failure of host's
// middleware (Dynamic names it after the host's first label) that contains want.
func assertFailureLogged(t *testing.T, tr *harness.Traefik, host, want string) {
	t.Helper()
	name := strings.SplitN(host, ".", 2)[0] + "-auth"
	for _, line := range strings.Split(tr.Logs(), "\n") {
		if strings.Contains(line, name+"@file: introspection failed") && strings.Contains(line, want) {
			return
		}
	}
	t.Errorf("traefik log has no line of %s's introspection failure with %q", name, want)
}

// clientCert issues a client certificate of ca with subject CN=commonName.
func clientCert(t *testing.T, ca *harness.TestCA, name, commonName string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := ca.ClientCert(name, commonName)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// jwk is the public key as a JWK for signatures under kid.
func jwk(key any, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key, KeyID: kid, Use: "sig"}
}

// publicJWKS is keys as a JWK Set, in the form oidc-provider takes as client metadata.
func publicJWKS(t *testing.T, keys ...jose.JSONWebKey) map[string]any {
	t.Helper()
	var set map[string]any
	if err := json.Unmarshal(publicJWKSBytes(t, keys...), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func publicJWKSBytes(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// verifiedHeader is where jwtVerifier's backend says what it found in X-Introspection-JWT.
const verifiedHeader = "X-Test-Verified"

// jwtVerifier is a backend that verifies the signed answer it receives in
// X-Introspection-JWT with the authorization server's keys, as a backend of the phantom
// token pattern does, and reports it to the test in verifiedHeader: "<alg> <kid> <typ>
// iss=<iss> aud=<aud> active client_id=<client_id>", or "refused: <why>".
type jwtVerifier struct {
	mu   sync.Mutex
	keys jose.JSONWebKeySet
}

// setKeys replaces the keys with a JWK Set.
func (v *jwtVerifier) setKeys(t *testing.T, jwks []byte) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.keys = set
	v.mu.Unlock()
}

func (v *jwtVerifier) backend() http.Handler {
	echo := harness.Backend()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report, err := v.verify(r.Header.Get("X-Introspection-JWT"))
		if err != nil {
			report = "refused: " + err.Error()
		}
		r.Header.Set(verifiedHeader, report)
		echo.ServeHTTP(w, r)
	})
}

func (v *jwtVerifier) verify(compact string) (string, error) {
	if compact == "" {
		return "", errors.New("no X-Introspection-JWT")
	}
	jws, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil {
		return "", err
	}
	header := jws.Signatures[0].Protected
	v.mu.Lock()
	keys := v.keys.Key(header.KeyID)
	v.mu.Unlock()
	if len(keys) != 1 {
		return "", fmt.Errorf("%d keys with kid %q", len(keys), header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return "", err
	}
	var claims struct {
		Iss    string `json:"iss"`
		Aud    string `json:"aud"`
		Answer struct {
			Active   bool   `json:"active"`
			ClientID string `json:"client_id"`
		} `json:"token_introspection"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", err
	}
	if !claims.Answer.Active {
		return "", errors.New("token_introspection is not active")
	}
	return fmt.Sprintf("%s %s %v iss=%s aud=%s active client_id=%s", header.Algorithm, header.KeyID,
		header.ExtraHeaders[jose.HeaderType], claims.Iss, claims.Aud, claims.Answer.ClientID), nil
}
