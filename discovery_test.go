package introspection

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// metadataServer is an authorization server that publishes its metadata: the RFC 8414
// document, the OpenID one or both, for an issuer at its URL and path; its introspection
// endpoint (an authServer's handler, at every other path) and its keys at /jwks. It counts
// the GETs of each path.
type metadataServer struct {
	*authServer
	mu        sync.Mutex
	issuer    string
	names     string                 // the issuer the documents name, when not issuer
	names8414 string                 // the issuer RFC 8414's document names, when not names
	path      string                 // the issuer's path, "" or "/tenant"
	rfc8414   bool                   // serves /.well-known/oauth-authorization-server<path>
	openid    bool                   // serves <path>/.well-known/openid-configuration
	metadata  map[string]interface{} // what both documents say, beside issuer
	status    int                    // when not 0, the documents' status instead
	jwks      string
	gets      map[string]int
	gate      chan struct{} // when set, the GETs of gated wait until it is closed
	gated     string        // a path prefix: "/.well-known" for the documents, "/jwks" for the keys
}

func newMetadataServer(t *testing.T, path string) *metadataServer {
	return startMetadataServer(t, path, httptest.NewServer)
}

// newTLSMetadataServer is a metadataServer over https, for an issuer without a path, and
// a caFile that trusts it.
func newTLSMetadataServer(t *testing.T) (*metadataServer, string) {
	ms := startMetadataServer(t, "", httptest.NewTLSServer)
	return ms, writePEM(t, "server-ca.pem", "CERTIFICATE", ms.Certificate().Raw)
}

func startMetadataServer(t *testing.T, path string, start func(http.Handler) *httptest.Server) *metadataServer {
	ms := &metadataServer{authServer: &authServer{answers: map[string]interface{}{}}, path: path, rfc8414: true, openid: true, gets: map[string]int{}}
	ms.Server = start(http.HandlerFunc(ms.serve))
	ms.stopAtCleanup(t)
	ms.issuer = ms.URL + path
	ms.metadata = map[string]interface{}{"introspection_endpoint": ms.URL + "/introspect", "jwks_uri": ms.URL + "/jwks"}
	return ms
}

func (ms *metadataServer) serve(rw http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet {
		ms.authServer.serve(rw, req)
		return
	}
	ms.mu.Lock()
	ms.gets[req.URL.Path]++
	gate := ms.gate
	ms.mu.Unlock()
	if gate != nil && strings.HasPrefix(req.URL.Path, ms.gated) {
		<-gate
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	served := (req.URL.Path == "/.well-known/oauth-authorization-server"+ms.path && ms.rfc8414) ||
		(req.URL.Path == ms.path+"/.well-known/openid-configuration" && ms.openid)
	switch {
	case req.URL.Path == "/jwks":
		io.WriteString(rw, ms.jwks)
	case !served:
		http.NotFound(rw, req)
	case ms.status != 0:
		rw.WriteHeader(ms.status)
	default:
		document := map[string]interface{}{"issuer": ms.issuer}
		if ms.names != "" {
			document["issuer"] = ms.names
		}
		if ms.names8414 != "" && strings.HasPrefix(req.URL.Path, "/.well-known/oauth-authorization-server") {
			document["issuer"] = ms.names8414
		}
		for name, value := range ms.metadata {
			document[name] = value
		}
		json.NewEncoder(rw).Encode(document)
	}
}

// set changes what the server publishes.
func (ms *metadataServer) set(edit func(ms *metadataServer)) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	edit(ms)
}

// got is how many GETs path got.
func (ms *metadataServer) got(path string) int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.gets[path]
}

// issuedBy is an active answer whose iss is issuer.
func issuedBy(issuer string) map[string]interface{} {
	return withClaim("iss", issuer)
}

// discoveryMiddleware is a middleware that finds its endpoint at ms's issuer, on a clock
// of the test's.
func discoveryMiddleware(t *testing.T, ms *metadataServer, edit func(*Config)) (*middleware, *backend, *clock) {
	t.Helper()
	config := testConfig("")
	config.Issuer = ms.issuer
	if edit != nil {
		edit(config)
	}
	m, next := newMiddleware(t, config)
	clk := &clock{t: time.Now()}
	m.now = clk.now
	return m, next, clk
}

// TestDiscovery: with issuer, the endpoint comes from the server's metadata, read at the
// first call (New stays offline), at RFC 8414's URL or else OpenID's, checked to be the
// issuer's own, and read again once discoveryRefresh has passed. While it cannot be read,
// requests get 503 and the log says why.
func TestDiscovery(t *testing.T) {
	metadata8414 := "/.well-known/oauth-authorization-server"
	cases := []struct {
		desc      string
		configure func(*Config)
		path      string // the issuer's
		rfc8414   bool
		openid    bool
		edit      func(ms *metadataServer)
		status    int
		gets      map[string]int // after two requests of two tokens
		called    string         // the path introspection was called at; "" none
		logged    string
	}{
		{desc: "RFC 8414 metadata", rfc8414: true, status: 200, gets: map[string]int{metadata8414: 1}, called: "/introspect"},
		{desc: "OpenID metadata after RFC 8414's 404", openid: true, status: 200,
			gets: map[string]int{metadata8414: 1, "/.well-known/openid-configuration": 1}, called: "/introspect"},
		{desc: "an issuer with a path, RFC 8414", path: "/tenant", rfc8414: true, status: 200,
			gets: map[string]int{metadata8414 + "/tenant": 1}, called: "/introspect"},
		{desc: "an issuer with a path, OpenID", path: "/tenant", openid: true, status: 200,
			gets: map[string]int{metadata8414 + "/tenant": 1, "/tenant/.well-known/openid-configuration": 1}, called: "/introspect"},
		{desc: "the metadata's endpoint, wherever it is", rfc8414: true, edit: func(ms *metadataServer) {
			ms.metadata["introspection_endpoint"] = ms.URL + "/oauth2/introspect"
		}, status: 200, gets: map[string]int{metadata8414: 1}, called: "/oauth2/introspect"},
		// A failed read is tried again by the next request after discoveryRetry only.
		{desc: "no metadata at all", status: 503, gets: map[string]int{metadata8414: 1, "/.well-known/openid-configuration": 1},
			logged: "reading the metadata of issuer http://127.0.0.1"},
		{desc: "metadata status 500", rfc8414: true, openid: true, edit: func(ms *metadataServer) { ms.status = 500 }, status: 503,
			gets: map[string]int{metadata8414: 1, "/.well-known/openid-configuration": 1}, logged: "/.well-known/openid-configuration: status 500"},
		{desc: "metadata of another issuer", rfc8414: true, openid: true, edit: func(ms *metadataServer) { ms.names = ms.issuer + "/other" }, status: 503,
			gets: map[string]int{metadata8414: 1, "/.well-known/openid-configuration": 1}, logged: "/other\", which must be identical to issuer"},
		{desc: "RFC 8414's document of another issuer, OpenID's of this one", rfc8414: true, openid: true, edit: func(ms *metadataServer) {
			ms.names8414 = ms.issuer + "/other"
		}, status: 200, gets: map[string]int{metadata8414: 1, "/.well-known/openid-configuration": 1}, called: "/introspect"},
		{desc: "metadata without introspection_endpoint", rfc8414: true, edit: func(ms *metadataServer) { delete(ms.metadata, "introspection_endpoint") },
			status: 503, gets: map[string]int{metadata8414: 1}, logged: "has no introspection_endpoint"},
		{desc: "responseFormat jwt and a jwks_uri on plain http", rfc8414: true, configure: func(c *Config) { c.ResponseFormat = "jwt" },
			edit: func(ms *metadataServer) { ms.metadata["jwks_uri"] = "http://keys.example/jwks" }, status: 503, gets: map[string]int{metadata8414: 1},
			logged: `jwks_uri "http://keys.example/jwks" on plain http: responseFormat "jwt" needs https`},
		{desc: "responseFormat jwt and an introspection_endpoint on plain http", rfc8414: true, configure: func(c *Config) { c.ResponseFormat = "jwt" },
			edit: func(ms *metadataServer) { ms.metadata["introspection_endpoint"] = "http://auth.example/introspect" }, status: 503, gets: map[string]int{metadata8414: 1},
			logged: `introspection_endpoint "http://auth.example/introspect" on plain http: responseFormat "jwt" needs https`},
		{desc: "an introspection_endpoint with credentials", rfc8414: true, edit: func(ms *metadataServer) {
			ms.metadata["introspection_endpoint"] = "http://u:s3cret-value@127.0.0.1/introspect"
		}, status: 503, gets: map[string]int{metadata8414: 1}, logged: `introspection_endpoint "<userinfo>@127.0.0.1/introspect", not an http or https URL`},
	}
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			ms := newMetadataServer(t, tc.path)
			ms.set(func(ms *metadataServer) {
				ms.rfc8414, ms.openid = tc.rfc8414, tc.openid
				if tc.edit != nil {
					tc.edit(ms)
				}
			})
			ms.answer("tok", issuedBy(ms.URL+tc.path))
			ms.answer("tok2", issuedBy(ms.URL+tc.path))
			logStart := len(logs.String())
			m, next, _ := discoveryMiddleware(t, ms, tc.configure)
			if len(ms.gets) != 0 {
				t.Fatalf("New read %v: it must stay offline", ms.gets)
			}
			for _, token := range []string{"tok", "tok2"} {
				if rec := serve(m, bearer(token)); rec.Code != tc.status {
					t.Fatalf("status = %d, want %d", rec.Code, tc.status)
				}
			}
			ms.mu.Lock()
			gets := ms.gets
			ms.mu.Unlock()
			if len(gets) != len(tc.gets) {
				t.Errorf("GETs %v, want %v", gets, tc.gets)
			}
			for path, n := range tc.gets {
				if gets[path] != n {
					t.Errorf("GETs %v, want %v", gets, tc.gets)
				}
			}
			wantCalls, wantNext := 0, 0
			if tc.called != "" {
				wantCalls, wantNext = 2, 2
				if req, _ := ms.lastCall(); req.URL.Path != tc.called {
					t.Errorf("introspection called at %s, want %s", req.URL.Path, tc.called)
				}
			}
			if ms.callCount() != wantCalls || next.count() != wantNext {
				t.Errorf("introspection calls %d, backend requests %d; want %d, %d", ms.callCount(), next.count(), wantCalls, wantNext)
			}
			// Every line, discovery's own too, which name no middleware.
			var lines []string
			if logged := strings.TrimSpace(logs.String()[logStart:]); logged != "" {
				lines = strings.Split(logged, "\n")
			}
			if tc.logged == "" && len(lines) > 0 || tc.logged != "" && (len(lines) != 1 || !strings.Contains(lines[0], m.name+": ") || !strings.Contains(lines[0], tc.logged)) {
				t.Errorf("log lines %q, want one that says %q (none when that is empty)", lines, tc.logged)
			}
			if strings.Contains(logs.String()[logStart:], "s3cret-value") {
				t.Errorf("the log shows the secret")
			}
		})
	}
}

// TestDiscoveryRefresh: the metadata is read again by the first call after
// discoveryRefresh, and a new endpoint it names is used from then on; a read that fails
// keeps the old metadata in use, says so once, and is tried again after discoveryRetry; a
// first read that fails is tried again after discoveryRetry too, not on every request.
func TestDiscoveryRefresh(t *testing.T) {
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	ms := newMetadataServer(t, "")
	ms.set(func(ms *metadataServer) { ms.openid = false; ms.status = 503 })
	for _, token := range []string{"t1", "t2", "t3", "t4", "t5", "t6"} {
		ms.answer(token, issuedBy(ms.issuer))
	}
	m, _, clk := discoveryMiddleware(t, ms, func(c *Config) { c.CacheTTL = "0s" })
	metadata := "/.well-known/oauth-authorization-server"
	step := func(token string, advance time.Duration, status, gets int, calledAt string) {
		t.Helper()
		clk.advance(advance)
		calls := ms.callCount()
		if rec := serve(m, bearer(token)); rec.Code != status {
			t.Fatalf("%s: status %d, want %d", token, rec.Code, status)
		}
		if ms.got(metadata) != gets {
			t.Errorf("%s: metadata GETs %d, want %d", token, ms.got(metadata), gets)
		}
		if calledAt == "" {
			if ms.callCount() != calls {
				t.Errorf("%s: introspection called", token)
			}
			return
		}
		if req, _ := ms.lastCall(); ms.callCount() != calls+1 || req.URL.Path != calledAt {
			t.Errorf("%s: introspection calls %d at %s, want 1 at %s", token, ms.callCount()-calls, req.URL.Path, calledAt)
		}
	}
	step("t1", 0, 503, 1, "")
	step("t1", time.Duration(discoveryRetry)-1, 503, 1, "") // not read again yet
	ms.set(func(ms *metadataServer) { ms.status = 0 })
	step("t1", 1, 200, 2, "/introspect")
	step("t2", time.Duration(discoveryRefresh)-1, 200, 2, "/introspect")
	ms.set(func(ms *metadataServer) { ms.metadata["introspection_endpoint"] = ms.URL + "/v2/introspect" })
	step("t3", 1, 200, 3, "/v2/introspect")

	// While one call reads the metadata again, the others go on with what was read.
	gate := make(chan struct{})
	ms.set(func(ms *metadataServer) {
		ms.gate, ms.gated = gate, "/.well-known"
		ms.metadata["introspection_endpoint"] = ms.URL + "/v3/introspect"
	})
	clk.advance(time.Duration(discoveryRefresh))
	reading := make(chan int, 1)
	go func() { reading <- serve(m, bearer("t1")).Code }()
	waitFor(t, "the read of the metadata", func() bool { return ms.got(metadata) == 4 })
	step("t2", 0, 200, 4, "/v2/introspect")
	close(gate)
	if code := <-reading; code != 200 {
		t.Fatalf("the call that read the metadata: status %d, want 200", code)
	}
	if req, _ := ms.lastCall(); req.URL.Path != "/v3/introspect" {
		t.Errorf("the call that read the metadata called %s, want /v3/introspect", req.URL.Path)
	}
	ms.set(func(ms *metadataServer) { ms.gate = nil })
	step("t3", 0, 200, 4, "/v3/introspect")

	logStart := len(logs.String())
	ms.set(func(ms *metadataServer) { ms.status = 500 })
	step("t4", time.Duration(discoveryRefresh), 200, 5, "/v3/introspect")
	step("t5", time.Duration(discoveryRetry)-1, 200, 5, "/v3/introspect")
	step("t5", 1, 200, 6, "/v3/introspect")
	if lines := strings.Split(strings.TrimSpace(logs.String()[logStart:]), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "issuer "+ms.issuer+": reading its metadata again failed, using what was read before") {
		t.Errorf("log %q, want one line that the old metadata is used", lines)
	}
	ms.set(func(ms *metadataServer) { ms.status = 0 })
	step("t6", time.Duration(discoveryRetry), 200, 7, "/v3/introspect")
	if !strings.Contains(logs.String()[logStart:], "issuer "+ms.issuer+": its metadata is read again") {
		t.Errorf("log %q, want a line that the metadata is read again", logs.String()[logStart:])
	}
}

// TestDiscoveryPolicy: issuers defaults to the issuer, and a set issuers replaces it; the
// client assertion's aud defaults to the endpoint discovered; a client certificate picks
// the mtls_endpoint_aliases endpoint (RFC 8705 §5).
func TestDiscoveryPolicy(t *testing.T) {
	t.Run("issuers defaults to the issuer", func(t *testing.T) {
		ms := newMetadataServer(t, "")
		ms.answer("ours", issuedBy(ms.issuer))
		ms.answer("theirs", issuedBy("https://issuer.example"))
		m, _, _ := discoveryMiddleware(t, ms, nil)
		if rec := serve(m, bearer("ours")); rec.Code != 200 {
			t.Errorf("the issuer's token: status %d, want 200", rec.Code)
		}
		if rec := serve(m, bearer("theirs")); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != challengeToken {
			t.Errorf("another issuer's token: status %d, challenge %q; want 401, %q", rec.Code, rec.Header().Get("WWW-Authenticate"), challengeToken)
		}
	})
	t.Run("issuers set replaces it", func(t *testing.T) {
		ms := newMetadataServer(t, "")
		ms.answer("ours", issuedBy(ms.issuer))
		ms.answer("theirs", issuedBy("https://issuer.example"))
		m, _, _ := discoveryMiddleware(t, ms, func(c *Config) { c.Issuers = []string{"https://issuer.example"} })
		if rec := serve(m, bearer("theirs")); rec.Code != 200 {
			t.Errorf("a token of issuers: status %d, want 200", rec.Code)
		}
		if rec := serve(m, bearer("ours")); rec.Code != 401 {
			t.Errorf("the discovered issuer's token: status %d, want 401", rec.Code)
		}
	})
	t.Run("the assertion's aud is the issuer", func(t *testing.T) {
		ms := newMetadataServer(t, "")
		ms.set(func(ms *metadataServer) { ms.metadata["introspection_endpoint"] = ms.URL + "/oauth2/introspect" })
		ms.answer("tok", issuedBy(ms.issuer))
		m, _, _ := discoveryMiddleware(t, ms, func(c *Config) {
			c.AuthMethod = "client_secret_jwt"
			c.ClientSecret = strings.Repeat("k", 32) // apart: yaegi sets only a call's target of a multiple assignment
		})
		if rec := serve(m, bearer("tok")); rec.Code != 200 {
			t.Fatalf("status %d, want 200", rec.Code)
		}
		_, form := ms.lastCall()
		if _, claims, _, _ := decodeJWS(t, form.Get("client_assertion")); claims["aud"] != ms.issuer {
			t.Errorf("aud %v, want the issuer %s", claims["aud"], ms.issuer)
		}
	})
	t.Run("responseKeysFile instead of jwks_uri", func(t *testing.T) {
		ms := newMetadataServer(t, "")
		jwksFile, _ := responseKeyFiles(t)
		answer := signedAnswer(func(h, c map[string]interface{}) {
			c["iss"] = ms.issuer
			c["token_introspection"] = issuedBy(ms.issuer)
		})
		ms.answer("tok", answer)
		m, next, _ := discoveryMiddleware(t, ms, func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.ForwardIntrospectionJWT = "jwt", jwksFile, "X-Introspection-JWT"
		})
		if rec := serve(m, bearer("tok")); rec.Code != 200 || next.lastRequest().Header.Get("X-Introspection-Jwt") != answer {
			t.Fatalf("status %d, want 200 and the signed answer forwarded", rec.Code)
		}
		if ms.got("/jwks") != 0 || ms.got("/.well-known/oauth-authorization-server") != 1 {
			t.Errorf("jwks GETs %d, metadata GETs %d; want 0 and 1", ms.got("/jwks"), ms.got("/.well-known/oauth-authorization-server"))
		}
	})
	t.Run("an https issuer's endpoint on plain http", func(t *testing.T) {
		ms, caFile := newTLSMetadataServer(t)
		// The tokens and the secret would go to it in clear.
		ms.metadata["introspection_endpoint"] = "http://auth.example/introspect"
		var logs lockedBuffer
		log.SetOutput(&logs)
		defer log.SetOutput(os.Stderr)
		m, next, _ := discoveryMiddleware(t, ms, func(c *Config) { c.CAFile = caFile })
		if rec := serve(m, bearer("tok")); rec.Code != 503 || next.count() != 0 {
			t.Errorf("status %d, backend requests %d; want 503 and none", rec.Code, next.count())
		}
		if want := `the metadata of https issuer ` + ms.issuer + ` has introspection_endpoint "http://auth.example/introspect" on plain http`; !strings.Contains(logs.String(), want) {
			t.Errorf("log %q, want %q", logs.String(), want)
		}
	})
	t.Run("a client certificate picks the mTLS alias", func(t *testing.T) {
		ms, caFile := newTLSMetadataServer(t)
		ms.metadata["mtls_endpoint_aliases"] = map[string]interface{}{"introspection_endpoint": ms.URL + "/mtls/introspect"}
		ms.answer("tok", issuedBy(ms.issuer))
		certFile, keyFile := writeCertFiles(t, testCert(t, "traefik", nil, 0))
		for _, withCert := range []bool{false, true} {
			m, _, _ := discoveryMiddleware(t, ms, func(c *Config) {
				c.CAFile = caFile
				if withCert {
					c.AuthMethod, c.ClientSecret, c.TLSCertFile, c.TLSKeyFile = "tls_client_auth", "", certFile, keyFile
				}
			})
			want := "/introspect"
			if withCert {
				want = "/mtls/introspect"
			}
			if rec := serve(m, bearer("tok")); rec.Code != 200 {
				t.Fatalf("client certificate %v: status %d, want 200", withCert, rec.Code)
			}
			if req, _ := ms.lastCall(); req.URL.Path != want {
				t.Errorf("client certificate %v: called %s, want %s", withCert, req.URL.Path, want)
			}
		}
	})
}

// TestDiscoveredKeys: with responseFormat jwt and no responseKeysFile, signed answers are
// checked with the keys at jwks_uri. When none verifies an answer (the server rotated its
// keys), they are read again at once, and then not again within keysRefetchInterval
// however many such answers come: a flood of unknown kids reads them once.
func TestDiscoveredKeys(t *testing.T) {
	ms := newMetadataServer(t, "")
	rsaJWKS := `{"keys":[` + publicJWK(testRSAKey, `"kid":"`+rsaKid+`","use":"sig"`) + `]}`
	ecJWKS := `{"keys":[` + publicJWK(testECKey, `"kid":"`+ecKid+`"`) + `]}`
	ms.set(func(ms *metadataServer) { ms.jwks = rsaJWKS })
	answerFor := func(alg, kid string, key interface{}) string {
		claims := signedClaims()
		claims["iss"] = ms.issuer
		claims["token_introspection"] = issuedBy(ms.issuer)
		return jws(map[string]interface{}{"alg": alg, "typ": "token-introspection+jwt", "kid": kid}, claims, signAs(alg[:2], crypto.SHA256, key))
	}
	m, next, clk := discoveryMiddleware(t, ms, func(c *Config) {
		c.ResponseFormat = "jwt"
		c.ForwardIntrospectionJWT = "X-Introspection-JWT"
	})
	step := func(token string, answer string, status, jwksGets int) {
		t.Helper()
		ms.answer(token, answer)
		if rec := serve(m, bearer(token)); rec.Code != status {
			t.Fatalf("%s: status %d, want %d", token, rec.Code, status)
		}
		if ms.got("/jwks") != jwksGets {
			t.Errorf("%s: jwks GETs %d, want %d", token, ms.got("/jwks"), jwksGets)
		}
		if status == 200 && next.lastRequest().Header.Get("X-Introspection-Jwt") != answer {
			t.Errorf("%s: the backend did not get the signed answer", token)
		}
	}
	step("rsa", answerFor("RS256", rsaKid, testRSAKey), 200, 1)
	ms.set(func(ms *metadataServer) { ms.jwks = ecJWKS })
	step("ec", answerFor("ES256", ecKid, testECKey), 200, 2) // rotated: read at once
	step("rsa-after", answerFor("RS256", rsaKid, testRSAKey), 503, 2)
	for _, token := range []string{"forged-1", "forged-2", "forged-3"} {
		step(token, answerFor("RS256", "unknown-"+token, testRSAKey), 503, 2)
	}
	clk.advance(time.Duration(keysRefetchInterval))
	step("forged-4", answerFor("RS256", "unknown", testRSAKey), 503, 3)
	step("ec-again", answerFor("ES256", ecKid, testECKey), 200, 3)

	// Rotated back while many answers come at once: they wait for the one read of the keys.
	clk.advance(time.Duration(keysRefetchInterval))
	gate := make(chan struct{})
	ms.set(func(ms *metadataServer) { ms.jwks, ms.gate, ms.gated = rsaJWKS, gate, "/jwks" })
	const herd = 10
	for i := 0; i < herd; i++ {
		ms.answer("rotated-"+strconv.Itoa(i), answerFor("RS256", rsaKid, testRSAKey))
	}
	answered := serveHerd(m, "rotated-", herd)
	waitFor(t, "the herd's calls", func() bool { return ms.got("/jwks") == 4 && callsInFlight(m) == herd })
	close(gate)
	answered(t, 200)
	if ms.got("/jwks") != 4 {
		t.Errorf("jwks GETs %d, want 4: one for the herd", ms.got("/jwks"))
	}
	if got := ms.got("/.well-known/oauth-authorization-server"); got != 1 {
		t.Errorf("metadata GETs %d, want 1: a key rotation reads the keys only", got)
	}
}

// TestDiscoveryErrors: New checks issuer without any network call.
func TestDiscoveryErrors(t *testing.T) {
	keysFile, _ := responseKeyFiles(t)
	cases := []struct {
		desc      string
		configure func(*Config)
		want      string
	}{
		{"endpoint and issuer", func(c *Config) { c.Endpoint = "https://auth.example/introspect" },
			`endpoint "https://auth.example/introspect" and issuer "https://auth.example" are both set`},
		{"issuer not a URL", func(c *Config) { c.Issuer = "auth.example" }, `issuer "auth.example" is not an http or https URL`},
		{"issuer with a query", func(c *Config) { c.Issuer = "https://auth.example/?tenant=s3cret-value" },
			`issuer "https://auth.example/?<redacted>" has credentials, a query or a fragment`},
		{"issuer with a fragment", func(c *Config) { c.Issuer = "https://auth.example/#x" }, `issuer "https://auth.example/?<redacted>" has`},
		{"issuer with credentials", func(c *Config) { c.Issuer = "https://u:s3cret-value@auth.example" }, `issuer "<userinfo>@auth.example" has credentials`},
		{"responseFormat jwt with a plain http issuer", func(c *Config) { c.Issuer, c.ResponseFormat = "http://auth.example", "jwt" },
			`issuer "http://auth.example" is plain http: responseFormat "jwt" needs https`},
		{"responseFormat jwt with keys and a plain http issuer", func(c *Config) {
			c.Issuer, c.ResponseFormat, c.ResponseKeysFile = "http://auth.example", "jwt", keysFile
		}, `issuer "http://auth.example" is plain http`},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig("")
			config.Issuer = "https://auth.example"
			tc.configure(config)
			_, err := New(context.Background(), &backend{}, config, "auth@test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
	t.Run("responseFormat jwt needs no responseKeysFile", func(t *testing.T) {
		config := testConfig("")
		config.Issuer, config.ResponseFormat = "https://auth.example", "jwt"
		if _, err := New(context.Background(), &backend{}, config, "auth@test"); err != nil {
			t.Errorf("New: %v", err)
		}
	})
}

// TestDiscoveryHerd: the first requests of many new tokens at once read the metadata once.
func TestDiscoveryHerd(t *testing.T) {
	ms := newMetadataServer(t, "")
	gate := make(chan struct{})
	ms.set(func(ms *metadataServer) { ms.gate, ms.gated = gate, "/.well-known" })
	m, next, _ := discoveryMiddleware(t, ms, nil)
	const herd = 20
	for i := 0; i < herd; i++ {
		ms.answer("herd-"+strconv.Itoa(i), issuedBy(ms.issuer))
	}
	answered := serveHerd(m, "herd-", herd)
	// Every request is in its own call, waiting for the one read of the metadata.
	waitFor(t, "the herd's calls", func() bool { return ms.got("/.well-known/oauth-authorization-server") == 1 && callsInFlight(m) == herd })
	close(gate)
	answered(t, 200)
	if got := ms.got("/.well-known/oauth-authorization-server"); got != 1 || next.count() != herd {
		t.Errorf("metadata GETs %d, backend requests %d; want 1, %d", got, next.count(), herd)
	}
}

// serveHerd sends m, at once, n requests with the tokens prefix0 to prefix<n-1>, and returns
// the check that each was answered with the status wanted, which waits for them all.
func serveHerd(m *middleware, prefix string, n int) func(t *testing.T, want int) {
	done := make(chan int, n)
	for i := 0; i < n; i++ {
		token := prefix + strconv.Itoa(i)
		go func() { done <- serve(m, bearer(token)).Code }()
	}
	return func(t *testing.T, want int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if code := <-done; code != want {
				t.Errorf("status %d, want %d", code, want)
			}
		}
	}
}

// callsInFlight is how many introspection calls m's state has in flight.
func callsInFlight(m *middleware) int {
	m.state.flight.mu.Lock()
	defer m.state.flight.mu.Unlock()
	return len(m.state.flight.calls)
}

// TestDiscoveryShared: the routes that share a cache read the metadata once; a route that
// names the same URL as its endpoint shares nothing with them.
func TestDiscoveryShared(t *testing.T) {
	ms := newMetadataServer(t, "")
	ms.answer("tok", issuedBy(ms.issuer))
	read, _, _ := discoveryMiddleware(t, ms, func(c *Config) { c.RequiredScopes = []string{"read"} })
	write, _, _ := discoveryMiddleware(t, ms, func(c *Config) { c.RequiredScopes = []string{"write"} })
	direct, _ := newMiddleware(t, testConfig(ms.URL))
	for _, m := range []*middleware{read, write, direct} {
		if rec := serve(m, bearer("tok")); rec.Code != 200 {
			t.Errorf("status %d, want 200", rec.Code)
		}
	}
	if read.state != write.state || direct.state == read.state {
		t.Errorf("the routes of one issuer share a state: %v; the endpoint's is its own: %v", read.state == write.state, direct.state != read.state)
	}
	if got := ms.got("/.well-known/oauth-authorization-server"); got != 1 || ms.callCount() != 2 {
		t.Errorf("metadata GETs %d, introspection calls %d; want 1 (one read) and 2 (one cached answer, and the endpoint's own)", got, ms.callCount())
	}
}

// TestDiscoveryQueue: a call that waited for a read of the metadata takes its outcome,
// even a failure that took longer than discoveryRetry: the calls queued behind a slow
// failing read do not each read again, one after another.
func TestDiscoveryQueue(t *testing.T) {
	ms := newMetadataServer(t, "")
	gate := make(chan struct{})
	ms.set(func(ms *metadataServer) { ms.status, ms.gate, ms.gated = 500, gate, "/.well-known" })
	ms.answer("first", issuedBy(ms.issuer))
	ms.answer("queued", issuedBy(ms.issuer))
	m, _, clk := discoveryMiddleware(t, ms, nil)
	first := make(chan int, 1)
	go func() { first <- serve(m, bearer("first")).Code }()
	waitFor(t, "the first read", func() bool { return ms.got("/.well-known/oauth-authorization-server") == 1 })
	clk.advance(2 * time.Duration(discoveryRetry)) // the read is slow
	queued := make(chan int, 1)
	go func() { queued <- serve(m, bearer("queued")).Code }()
	waitFor(t, "the queued call", func() bool { return callsInFlight(m) == 2 })
	close(gate)
	a := <-first
	b := <-queued
	if a != 503 || b != 503 {
		t.Errorf("statuses %d, %d; want 503, 503", a, b)
	}
	if got := ms.got("/.well-known/oauth-authorization-server"); got != 1 {
		t.Errorf("metadata GETs %d, want 1", got)
	}
}
