package e2e_test

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// Sender-constrained tokens through a real Traefik v3.6 against node oidc-provider, which
// binds its tokens to a DPoP key (RFC 9449, cnf.jkt) or to the client certificate of the
// token request (RFC 8705 §3, cnf["x5t#S256"]). Every case says what the client sees (the
// status and every WWW-Authenticate line), what the backend received, and how many
// introspection calls oidc-provider counted: a proof judged bad before introspection
// makes none, and a token seen for the first time makes one.

// The challenges, as the contract of issue 17 writes them: Bearer first, then DPoP, the
// error on the line of the scheme the request used, proof errors on the DPoP line.
const (
	dpopAlgs    = `algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`
	bearerLine  = `Bearer realm="traefik"`
	dpopLine    = "DPoP " + dpopAlgs
	nonceDPoP   = `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", ` + dpopAlgs
	invalidLine = `Bearer realm="traefik", error="invalid_token"`
)

// dpopError is the DPoP challenge with an error code.
func dpopError(code string) string { return `DPoP error="` + code + `", ` + dpopAlgs }

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

// The introspection client of the sender tests' routes.
const (
	senderClient = "gw-sender"
	senderSecret = "gw-sender-secret"
)

// senderOptions is a route's configuration: oidc-provider's endpoint as senderClient, the
// client_id forwarded, and more.
func senderOptions(op *harness.OIDCProvider, more string) string {
	return fmt.Sprintf("endpoint: %q\nclientId: %s\nclientSecret: %s\n%s\n%s",
		op.Issuer+harness.OPIntrospectionPath, senderClient, senderSecret, opForward, more)
}

// DPoP-bound tokens (cnf.jkt) from oidc-provider's token endpoint, each request with
// proofs made by go-jose for the URL as the client addresses it through Traefik
// (http://<host>:<port>/path, the query left out of htu): passing with a fresh proof,
// cached or not, and refused with every way of getting the proof or the scheme wrong; then
// the modes: forwardAuthorization false, dpop off, dpop required, dpopNonce.
func TestDPoPThroughTraefik(t *testing.T) {
	op, _ := startOIDCProvider(t, t.TempDir(), map[string]any{"client_id": senderClient, "client_secret": senderSecret})
	hosts := map[string]string{
		"dpop.localhost":     "",
		"strip.localhost":    "forwardAuthorization: false",
		"stripoff.localhost": "dpop: \"off\"\nforwardAuthorization: false",
		// Unquoted, as users write it: Traefik's file provider reads YAML with yaml.v3,
		// for which off is a string, not YAML 1.1's false.
		"off.localhost":      "dpop: off",
		"required.localhost": "dpop: required",
		"nonce.localhost":    "dpopNonce: true",
		"scope.localhost":    "requiredScopes: [write]",
	}
	var routes []harness.Route
	for host, more := range hosts {
		routes = append(routes, harness.Route{Host: host, Middleware: harness.PluginMiddleware(harness.Alias, senderOptions(op, more))})
	}
	tr := startTraefik(t, harness.Dynamic(serve(t, harness.Backend()), routes))
	for host := range hosts {
		waitRouted(t, tr, host)
	}
	s := newSender(t, op, harness.Client(nil, nil))
	key, other := dpopKey(t, jose.ES256), dpopKey(t, jose.ES256)

	refusedProof := []string{bearerLine, dpopError("invalid_dpop_proof")}
	refusedDPoP := []string{bearerLine, dpopError("invalid_token")}
	refusedBearer := []string{invalidLine, dpopLine}
	admitted := func(token, proof string) map[string]string {
		return map[string]string{"Authorization": "DPoP " + token, "Dpop": proof, "X-Auth-Client": harness.OPTokenClientID}
	}

	t.Run("dpop allowed", func(t *testing.T) {
		site := tr.HostURL("dpop.localhost")
		url, htu := site+"/orders/1?page=2", site+"/orders/1"
		t1, t2, t3, u := s.bound(t, key), s.bound(t, key), s.bound(t, key), s.unbound(t)
		first, second, third := s.proof(t, key, "GET", htu, t1), s.proof(t, key, "GET", htu, t1), s.proof(t, key, "GET", htu, t1)
		https := "https" + htu[len("http"):]
		for _, c := range []senderCheck{
			{what: "no token", req: get(t, url, ""), challenges: []string{bearerLine, dpopLine}},
			{what: "fresh proof", req: get(t, url, "DPoP "+t1, first), backend: admitted(t1, first), calls: 1},
			// The answer is cached; the proof is checked on every request all the same.
			{what: "cached token, fresh proof", req: get(t, url, "DPoP "+t1, second), backend: admitted(t1, second)},
			{what: "scheme in lower case", req: get(t, url, "dpop "+t1, third), backend: map[string]string{"Authorization": "dpop " + t1, "Dpop": third}},
			{what: "replayed proof", req: get(t, url, "DPoP "+t1, first), challenges: refusedProof},
			// t2 is new: these proofs are refused before any introspection call.
			{what: "no proof", req: get(t, url, "DPoP "+t2), challenges: refusedProof},
			{what: "two proofs", req: get(t, url, "DPoP "+t2, s.proof(t, key, "GET", htu, t2), s.proof(t, key, "GET", htu, t2)), challenges: refusedProof},
			{what: "wrong htm", req: get(t, url, "DPoP "+t2, s.proof(t, key, "POST", htu, t2)), challenges: refusedProof},
			{what: "wrong htu path", req: get(t, url, "DPoP "+t2, s.proof(t, key, "GET", site+"/orders/2", t2)), challenges: refusedProof},
			{what: "wrong htu host", req: get(t, url, "DPoP "+t2, s.proof(t, key, "GET", tr.HostURL("other.localhost")+"/orders/1", t2)), challenges: refusedProof},
			{what: "wrong htu port", req: get(t, url, "DPoP "+t2, s.proof(t, key, "GET", "http://dpop.localhost/orders/1", t2)), challenges: refusedProof},
			// Traefik replaces the X-Forwarded-Proto of a client it does not trust with the
			// scheme of the connection, http here: a client cannot make the middleware take
			// an https proof over http.
			{what: "wrong htu scheme, with X-Forwarded-Proto https from the client",
				req: withHeader(get(t, url, "DPoP "+t2, s.proof(t, key, "GET", https, t2)), "X-Forwarded-Proto", "https"), challenges: refusedProof},
			{what: "wrong ath", req: get(t, url, "DPoP "+t2, s.proof(t, key, "GET", htu, t1)), challenges: refusedProof},
			// Whose key signed is known from the answer's cnf.jkt: one call.
			{what: "proof by another key", req: get(t, url, "DPoP "+t2, s.proof(t, other, "GET", htu, t2)), challenges: refusedDPoP, calls: 1},
			// RFC 9449 §7.2: a bound token sent as a bearer token is refused, proof or not.
			{what: "as Bearer with a proof", req: get(t, url, "Bearer "+t3, s.proof(t, key, "GET", htu, t3)), challenges: refusedBearer, calls: 1},
			{what: "as Bearer, cached", req: get(t, url, "Bearer "+t1), challenges: refusedBearer},
			{what: "unbound token with the DPoP scheme", req: get(t, url, "DPoP "+u, s.proof(t, key, "GET", htu, u)), challenges: refusedDPoP, calls: 1},
			{what: "unbound token as Bearer", req: get(t, url, "Bearer "+u), backend: map[string]string{"Authorization": "Bearer " + u, "Dpop": ""}},
		} {
			s.check(t, c)
		}
	})

	t.Run("forwardAuthorization false", func(t *testing.T) {
		htu := tr.HostURL("strip.localhost") + "/"
		token := s.bound(t, key)
		s.check(t, senderCheck{what: "bound token", req: get(t, htu, "DPoP "+token, s.proof(t, key, "GET", htu, token)),
			backend: map[string]string{"Authorization": "", "Dpop": "", "X-Auth-Client": harness.OPTokenClientID}, calls: 1})
		// With dpop off, a DPoP header is no proof of ours; it is removed all the same.
		htu = tr.HostURL("stripoff.localhost") + "/"
		u := s.unbound(t)
		s.check(t, senderCheck{what: "dpop off, bearer token with a DPoP header", req: get(t, htu, "Bearer "+u, s.proof(t, key, "GET", htu, u)),
			backend: map[string]string{"Authorization": "", "Dpop": "", "X-Auth-Client": harness.OPTokenClientID}, calls: 1})
	})

	// off never means "ignore the binding": the DPoP scheme is not a token of this route, and
	// a DPoP-bound token sent as a bearer token is refused.
	t.Run("dpop off", func(t *testing.T) {
		htu := tr.HostURL("off.localhost") + "/"
		token, u := s.bound(t, key), s.unbound(t)
		for _, c := range []senderCheck{
			{what: "no token", req: get(t, htu, ""), challenges: []string{bearerLine}},
			{what: "the DPoP scheme", req: get(t, htu, "DPoP "+token, s.proof(t, key, "GET", htu, token)), challenges: []string{bearerLine}},
			{what: "bound token as Bearer", req: get(t, htu, "Bearer "+token, s.proof(t, key, "GET", htu, token)), challenges: []string{invalidLine}, calls: 1},
			{what: "unbound token", req: get(t, htu, "Bearer "+u), backend: map[string]string{"Authorization": "Bearer " + u}, calls: 1},
		} {
			s.check(t, c)
		}
	})

	t.Run("dpop required", func(t *testing.T) {
		htu := tr.HostURL("required.localhost") + "/"
		token, u := s.bound(t, key), s.unbound(t)
		proof := s.proof(t, key, "GET", htu, token)
		refused := []string{dpopError("invalid_token")}
		for _, c := range []senderCheck{
			{what: "no token", req: get(t, htu, ""), challenges: []string{dpopLine}},
			// A bearer token cannot pass, whatever its answer: no call.
			{what: "unbound token as Bearer", req: get(t, htu, "Bearer "+u), challenges: refused},
			{what: "unbound token with the DPoP scheme", req: get(t, htu, "DPoP "+u, s.proof(t, key, "GET", htu, u)), challenges: refused, calls: 1},
			{what: "bound token as Bearer", req: get(t, htu, "Bearer "+token), challenges: refused},
			{what: "bound token without a proof", req: get(t, htu, "DPoP "+token), challenges: []string{dpopError("invalid_dpop_proof")}},
			{what: "bound token", req: get(t, htu, "DPoP "+token, proof), backend: admitted(token, proof), calls: 1},
		} {
			s.check(t, c)
		}
	})

	// The route's policy refuses a DPoP request on the DPoP line: an inactive token, a
	// missing scope.
	t.Run("policy", func(t *testing.T) {
		htu := tr.HostURL("scope.localhost") + "/"
		token, revoked := s.bound(t, key), s.bound(t, key)
		if err := op.Revoke(revoked); err != nil {
			t.Fatal(err)
		}
		for _, c := range []senderCheck{
			{what: "revoked token", req: get(t, htu, "DPoP "+revoked, s.proof(t, key, "GET", htu, revoked)), challenges: refusedDPoP, calls: 1},
			{what: "missing scope", req: get(t, htu, "DPoP "+token, s.proof(t, key, "GET", htu, token)), status: http.StatusForbidden,
				challenges: []string{bearerLine, `DPoP error="insufficient_scope", scope="write", ` + dpopAlgs}, calls: 1},
			{what: "missing scope, as Bearer", req: get(t, htu, "Bearer "+s.unbound(t)), status: http.StatusForbidden,
				challenges: []string{`Bearer realm="traefik", error="insufficient_scope", scope="write"`, dpopLine}, calls: 1},
		} {
			s.check(t, c)
		}
	})

	// RFC 9449 §9: the nonce comes with the refusal, and the retry that carries it passes.
	t.Run("dpopNonce", func(t *testing.T) {
		htu := tr.HostURL("nonce.localhost") + "/"
		token := s.bound(t, key)
		refused := []string{bearerLine, nonceDPoP}
		a := s.check(t, senderCheck{what: "no nonce", req: get(t, htu, "DPoP "+token, s.proof(t, key, "GET", htu, token)), challenges: refused})
		nonce := a.Header.Get("DPoP-Nonce")
		if nonce == "" {
			t.Fatal("the use_dpop_nonce answer has no DPoP-Nonce header")
		}
		forged := s.proofWith(t, key, map[string]any{"nonce": harness.RandomID()}, "GET", htu, token)
		if a := s.check(t, senderCheck{what: "a nonce not ours", req: get(t, htu, "DPoP "+token, forged), challenges: refused}); a.Header.Get("DPoP-Nonce") == "" {
			t.Error("the use_dpop_nonce answer to a forged nonce has no DPoP-Nonce header")
		}
		proof := s.proofWith(t, key, map[string]any{"nonce": nonce}, "GET", htu, token)
		s.check(t, senderCheck{what: "the nonce given", req: get(t, htu, "DPoP "+token, proof), backend: admitted(token, proof), calls: 1})
	})

	assertLogHoldsNo(t, tr, append(s.secrets, senderSecret)...)
}

// Certificate-bound tokens (cnf["x5t#S256"]) from oidc-provider's mtls listener, through
// Traefik's websecure entry point, whose TLS options ask for a client certificate and
// verify one given (clientAuthType VerifyClientCertIfGiven, caFiles the test CA): Traefik
// hands the verified chain to the middleware in the request's TLS.PeerCertificates. The
// bound certificate passes; another one from the same CA, none, and plain HTTP are refused,
// on the first sight of the token and with its answer cached. certificateBound required
// refuses every token that is not certificate-bound.
func TestCertificateBoundThroughTraefik(t *testing.T) {
	dir := t.TempDir()
	op, ca := startOIDCProvider(t, dir, map[string]any{"client_id": senderClient, "client_secret": senderSecret})
	certFile, keyFile := clientCert(t, ca, "bound", "bound-client")
	otherCertFile, otherKeyFile := clientCert(t, ca, "other", "other-client")
	serverCert, serverKey, err := ca.ServerCert("traefik", "*.localhost")
	if err != nil {
		t.Fatal(err)
	}
	routes := []harness.Route{
		{Host: "cert.localhost", Middleware: harness.PluginMiddleware(harness.Alias, senderOptions(op, "")), TLS: true},
		{Host: "certreq.localhost", Middleware: harness.PluginMiddleware(harness.Alias, senderOptions(op, "certificateBound: required")), TLS: true},
	}
	tr := startTraefikWith(t, harness.Dynamic(serve(t, harness.Backend()), routes), harness.Options{TLS: &harness.EntryPointTLS{
		CertFile: serverCert, KeyFile: serverKey, ClientAuthType: "VerifyClientCertIfGiven", ClientCAFile: ca.CertFile}})
	for _, r := range routes {
		waitRouted(t, tr, r.Host)
	}
	// One client per certificate: a connection made with one is never reused with another.
	withCert := senderClientWith(t, ca, certFile, keyFile)
	withOther := senderClientWith(t, ca, otherCertFile, otherKeyFile)
	withNone := harness.Client(ca.Pool(), nil)
	t.Cleanup(withNone.CloseIdleConnections)
	s := newSender(t, op, withCert)
	refused := []string{invalidLine, dpopLine}
	admitted := func(token string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + token, "X-Auth-Client": harness.OPBoundClientID}
	}

	t.Run("certificate-bound", func(t *testing.T) {
		url := tr.TLSHostURL("cert.localhost") + "/"
		token, fresh := s.certBound(t, certFile, keyFile), s.certBound(t, certFile, keyFile)
		for _, c := range []senderCheck{
			{what: "the bound certificate", req: get(t, url, "Bearer "+token), backend: admitted(token), calls: 1},
			{what: "another certificate", client: withOther, req: get(t, url, "Bearer "+token), challenges: refused},
			{what: "no certificate", client: withNone, req: get(t, url, "Bearer "+token), challenges: refused},
			{what: "plain HTTP", req: get(t, tr.HostURL("cert.localhost")+"/", "Bearer "+token), challenges: refused},
			{what: "the bound certificate again", req: get(t, url, "Bearer "+token), backend: admitted(token)},
			{what: "a new token, another certificate", client: withOther, req: get(t, url, "Bearer "+fresh), challenges: refused, calls: 1},
			{what: "a new token, no certificate", client: withNone, req: get(t, url, "Bearer "+fresh), challenges: refused},
			{what: "a new token, the bound certificate", req: get(t, url, "Bearer "+fresh), backend: admitted(fresh)},
		} {
			s.check(t, c)
		}
	})

	// Over TLS, the request's URL is https: the proof's htu says so.
	t.Run("DPoP over TLS", func(t *testing.T) {
		url := tr.TLSHostURL("cert.localhost") + "/"
		key := dpopKey(t, jose.ES256)
		token := s.bound(t, key)
		proof := s.proof(t, key, "GET", url, token)
		s.check(t, senderCheck{what: "https proof", req: get(t, url, "DPoP "+token, proof), calls: 1,
			backend: map[string]string{"Authorization": "DPoP " + token, "Dpop": proof, "X-Auth-Client": harness.OPTokenClientID}})
		http := "http" + url[len("https"):]
		s.check(t, senderCheck{what: "http proof over TLS", req: get(t, url, "DPoP "+token, s.proof(t, key, "GET", http, token)),
			challenges: []string{bearerLine, dpopError("invalid_dpop_proof")}})
	})

	t.Run("certificateBound required", func(t *testing.T) {
		url := tr.TLSHostURL("certreq.localhost") + "/"
		key := dpopKey(t, jose.ES256)
		token, u, dpop := s.certBound(t, certFile, keyFile), s.unbound(t), s.bound(t, key)
		for _, c := range []senderCheck{
			{what: "unbound token", req: get(t, url, "Bearer "+u), challenges: refused, calls: 1},
			{what: "DPoP-bound token with its proof", req: get(t, url, "DPoP "+dpop, s.proof(t, key, "GET", url, dpop)),
				challenges: []string{bearerLine, dpopError("invalid_token")}, calls: 1},
			{what: "certificate-bound token", req: get(t, url, "Bearer "+token), backend: admitted(token), calls: 1},
		} {
			s.check(t, c)
		}
	})

	assertLogHoldsNo(t, tr, append(s.secrets, senderSecret, pemLine(t, keyFile), pemLine(t, otherKeyFile))...)
}

// senderClientWith is a client of Traefik that trusts ca and presents the certificate.
func senderClientWith(t *testing.T, ca *harness.TestCA, certFile, keyFile string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := harness.Client(ca.Pool(), &cert)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// sender makes a sender test's tokens, proofs and requests, and checks what the client sees.
type sender struct {
	op      *harness.OIDCProvider
	client  *http.Client
	calls   func() int
	secrets []string // every token and proof made: Traefik's log must hold none
}

// senderCheck is one request and what the client is to see.
type senderCheck struct {
	what   string
	client *http.Client // nil for the sender's
	req    *http.Request
	// challenges: every WWW-Authenticate line of the middleware's refusal, in order, with
	// status (0 for 401); nil when the request is to be admitted, the backend getting these
	// headers ("" for none).
	status     int
	challenges []string
	backend    map[string]string
	calls      int // the introspection calls oidc-provider counts for it
}

func newSender(t *testing.T, op *harness.OIDCProvider, client *http.Client) *sender {
	t.Helper()
	t.Cleanup(client.CloseIdleConnections)
	return &sender{op: op, client: client, calls: counter(t, op, harness.OPIntrospectionPath)}
}

// check makes c's request and checks the answer, and returns it.
func (s *sender) check(t *testing.T, c senderCheck) harness.Answer {
	t.Helper()
	client := c.client
	if client == nil {
		client = s.client
	}
	a, err := harness.DoWith(client, c.req)
	if err != nil {
		t.Fatalf("%s: %v", c.what, err)
	}
	switch {
	case c.challenges == nil && (a.Status != http.StatusNotFound || a.Seen == nil):
		t.Errorf("%s: got %d (backend reached: %v) with WWW-Authenticate %q, want the backend's 404",
			c.what, a.Status, a.Seen != nil, a.Challenges)
	case c.challenges == nil:
		for name, want := range c.backend {
			if got := a.Seen.Headers.Get(name); got != want {
				t.Errorf("%s: backend got %s %s, want %s", c.what, name, withheld(name, got), withheld(name, want))
			}
		}
		if len(a.Challenges) != 0 {
			t.Errorf("%s: admitted with WWW-Authenticate %q", c.what, a.Challenges)
		}
	case a.Status != cmp.Or(c.status, http.StatusUnauthorized) || a.Seen != nil:
		t.Errorf("%s: got %d (backend reached: %v), want %d from the middleware", c.what, a.Status, a.Seen != nil,
			cmp.Or(c.status, http.StatusUnauthorized))
	case !slices.Equal(a.Challenges, c.challenges):
		t.Errorf("%s: WWW-Authenticate %q, want %q", c.what, a.Challenges, c.challenges)
	}
	assertCount(t, c.what+": introspection calls", s.calls(), c.calls)
	return a
}

// withheld is a header value as a failure may print it: not the token or the proof that
// Authorization and DPoP carry, only whether there is one.
func withheld(name, value string) string {
	if value == "" || (name != "Authorization" && name != "Dpop") {
		return fmt.Sprintf("%q", value)
	}
	return fmt.Sprintf("a value of %d bytes", len(value))
}

// bound is a new token bound to key.
func (s *sender) bound(t *testing.T, key *harness.DPoPKey) string {
	t.Helper()
	token, err := s.op.DPoPToken(key, "read")
	if err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, token)
	return token
}

// certBound is a new token bound to the certificate.
func (s *sender) certBound(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	token, err := s.op.CertBoundToken(certFile, keyFile, "read")
	if err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, token)
	return token
}

// unbound is a new bearer token.
func (s *sender) unbound(t *testing.T) string {
	t.Helper()
	token := opToken(t, s.op, "read", "")
	s.secrets = append(s.secrets, token)
	return token
}

// proof is a fresh proof of key for a request with method htm to htu carrying token.
func (s *sender) proof(t *testing.T, key *harness.DPoPKey, htm, htu, token string) string {
	t.Helper()
	return s.proofWith(t, key, nil, htm, htu, token)
}

// proofWith is proof with more claims.
func (s *sender) proofWith(t *testing.T, key *harness.DPoPKey, more map[string]any, htm, htu, token string) string {
	t.Helper()
	claims := harness.ProofClaims(htm, htu, token)
	for k, v := range more {
		claims[k] = v
	}
	proof, err := key.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, proof)
	return proof
}

// get is a GET of url with the Authorization header auth ("" for none) and one DPoP header
// per proof.
func get(t *testing.T, url, auth string, proofs ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return req
}

func withHeader(req *http.Request, name, value string) *http.Request {
	req.Header.Set(name, value)
	return req
}
