package introspection

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authServer is an introspection endpoint for tests. It answers each token from answers
// (inactive when unknown), or with fail when that is set, and records every call.
type authServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]interface{}
	fail    http.HandlerFunc
	calls   int64
	last    *http.Request
	form    url.Values
}

func newAuthServer(t testing.TB) *authServer {
	as := &authServer{answers: map[string]interface{}{}}
	as.Server = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.Close)
	return as
}

func (as *authServer) serve(rw http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(body))
	atomic.AddInt64(&as.calls, 1)
	as.mu.Lock()
	as.last, as.form = req, form
	answer, ok := as.answers[form.Get("token")]
	fail := as.fail
	as.mu.Unlock()
	if fail != nil {
		fail(rw, req)
		return
	}
	if !ok {
		answer = map[string]interface{}{"active": false}
	}
	rw.Header().Set("Content-Type", "application/json")
	if raw, isRaw := answer.(string); isRaw {
		io.WriteString(rw, raw)
		return
	}
	json.NewEncoder(rw).Encode(answer)
}

func (as *authServer) answer(token string, answer interface{}) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.answers[token] = answer
}

func (as *authServer) failWith(fail http.HandlerFunc) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.fail = fail
}

// activeServer is an endpoint that answers the token "tok" as active, and the
// configuration of a middleware that asks it.
func activeServer(t testing.TB) (*authServer, *Config) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	return as, testConfig(as.URL)
}

// hold makes the endpoint answer every call active, once the returned channel is closed.
func (as *authServer) hold() chan struct{} {
	release := make(chan struct{})
	as.failWith(func(rw http.ResponseWriter, _ *http.Request) {
		<-release
		json.NewEncoder(rw).Encode(activeClaims())
	})
	return release
}

func (as *authServer) callCount() int {
	return int(atomic.LoadInt64(&as.calls))
}

func (as *authServer) lastCall() (*http.Request, url.Values) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.last, as.form
}

// activeClaims is a healthy answer for a token with the read and write scopes.
func activeClaims() map[string]interface{} {
	return map[string]interface{}{
		"active":    true,
		"scope":     "read write",
		"sub":       "alice",
		"client_id": "app",
		"iss":       "https://issuer.example",
		"aud":       []string{"api", "other"},
		"exp":       time.Now().Add(time.Hour).Unix(),
		"iat":       time.Now().Unix(),
	}
}

func withClaim(name string, value interface{}) map[string]interface{} {
	claims := activeClaims()
	if value == nil {
		delete(claims, name)
	} else {
		claims[name] = value
	}
	return claims
}

// backend records what reached the next handler.
type backend struct {
	mu       sync.Mutex
	requests []*http.Request
}

func (b *backend) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	b.mu.Lock()
	b.requests = append(b.requests, req)
	b.mu.Unlock()
	rw.WriteHeader(http.StatusOK)
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		return nil
	}
	return b.requests[len(b.requests)-1]
}

// clock is a settable time for the cache tests: tests count calls, they never sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig(endpoint string) *Config {
	config := CreateConfig()
	config.Endpoint = endpoint
	config.ClientID = "traefik"
	config.ClientSecret = "s3cret-value"
	return config
}

func newMiddleware(t testing.TB, config *Config) (*middleware, *backend) {
	t.Helper()
	next := &backend{}
	handler, err := New(context.Background(), next, config, "auth@test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return handler.(*middleware), next
}

func bearer(token string) func(*http.Request) {
	return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
}

func serve(m http.Handler, edit func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil)
	if edit != nil {
		edit(req)
	}
	fromWire(req.Header)
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req)
	return rec
}

// fromWire gives the header's names the canonical form Go's HTTP/1 and HTTP/2 servers give
// every inbound name (textproto.CanonicalMIMEHeaderKey), whatever letter case the client
// sent: what the middleware sees inside Traefik. testSpoofing also sends them over a real
// connection.
func fromWire(h http.Header) {
	var names []string
	for name := range h {
		if http.CanonicalHeaderKey(name) != name {
			names = append(names, name)
		}
	}
	for _, name := range names {
		values := h[name]
		delete(h, name)
		h[http.CanonicalHeaderKey(name)] = append(h[http.CanonicalHeaderKey(name)], values...)
	}
}

// otherSpellings lists the names in h, with their values, that a backend may read as name
// (spoofName folds them together), name itself left out.
func otherSpellings(h http.Header, name string) []string {
	var others []string
	for got, values := range h {
		if got != name && spoofName(got) == spoofName(name) {
			others = append(others, got+"="+strings.Join(values, ","))
		}
	}
	return others
}

const (
	challenge        = `Bearer realm="traefik"`
	challengeRequest = `Bearer realm="traefik", error="invalid_request"`
	challengeToken   = `Bearer realm="traefik", error="invalid_token"`
)

// TestBehaviour is the README's behaviour table: one row per situation, with the status,
// the challenge, whether the backend was reached and how many calls the endpoint got.
func TestBehaviour(t *testing.T) {
	cases := []struct {
		desc      string
		configure func(*Config)
		request   func(*http.Request)
		answer    interface{} // the endpoint's answer for "tok"
		status    int
		challenge string
		calls     int
	}{
		{desc: "no token", status: 401, challenge: challenge},
		{desc: "another scheme is no bearer token", request: func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }, status: 401, challenge: challenge},
		{desc: "bad characters", request: bearer("abc$def"), status: 400, challenge: challengeRequest},
		{desc: "padding first", request: bearer("=abc"), status: 400, challenge: challengeRequest},
		{desc: "a scheme that starts with Bearer", request: func(r *http.Request) { r.Header.Set("Authorization", "Bearerish tok") }, status: 401, challenge: challenge},
		{desc: "query parameter twice", configure: func(c *Config) { c.TokenQuery = "access_token" }, request: func(r *http.Request) {
			r.URL.RawQuery = "access_token=tok&access_token=tok"
		}, answer: activeClaims(), status: 400, challenge: challengeRequest},
		{desc: "query token off by default", request: func(r *http.Request) { r.URL.RawQuery = "access_token=tok" }, answer: activeClaims(), status: 401, challenge: challenge},

		{desc: "active", request: bearer("tok"), answer: activeClaims(), status: 200, calls: 1},
		{desc: "inactive", request: bearer("tok"), answer: map[string]interface{}{"active": false}, status: 401, challenge: challengeToken, calls: 1},
		{desc: "unknown to the endpoint", request: bearer("nobody-knows"), answer: activeClaims(), status: 401, challenge: challengeToken, calls: 1},
		{desc: "expired beyond clockSkew", request: bearer("tok"), answer: withClaim("exp", time.Now().Add(-time.Minute).Unix()), status: 401, challenge: challengeToken, calls: 1},
		{desc: "expired within clockSkew", request: bearer("tok"), answer: withClaim("exp", time.Now().Add(-10*time.Second).Unix()), status: 200, calls: 1},
		{desc: "no exp", request: bearer("tok"), answer: withClaim("exp", nil), status: 200, calls: 1},
		{desc: "not valid before beyond clockSkew", request: bearer("tok"), answer: withClaim("nbf", time.Now().Add(time.Minute).Unix()), status: 401, challenge: challengeToken, calls: 1},
		{desc: "not valid before within clockSkew", request: bearer("tok"), answer: withClaim("nbf", time.Now().Add(10*time.Second).Unix()), status: 200, calls: 1},
		{desc: "zero clockSkew", configure: func(c *Config) { c.ClockSkew = "0s" }, request: bearer("tok"), answer: withClaim("exp", time.Now().Add(-10*time.Second).Unix()), status: 401, challenge: challengeToken, calls: 1},
		{desc: "audience in the list", configure: func(c *Config) { c.Audiences = []string{"api"} }, request: bearer("tok"), answer: activeClaims(), status: 200, calls: 1},
		{desc: "audience mismatch", configure: func(c *Config) { c.Audiences = []string{"billing"} }, request: bearer("tok"), answer: activeClaims(), status: 401, challenge: challengeToken, calls: 1},
		{desc: "audience is a prefix only", configure: func(c *Config) { c.Audiences = []string{"ap"} }, request: bearer("tok"), answer: withClaim("aud", "api"), status: 401, challenge: challengeToken, calls: 1},
		{desc: "no audience", configure: func(c *Config) { c.Audiences = []string{"api"} }, request: bearer("tok"), answer: withClaim("aud", nil), status: 401, challenge: challengeToken, calls: 1},
		{desc: "issuer matches", configure: func(c *Config) { c.Issuers = []string{"https://issuer.example"} }, request: bearer("tok"), answer: activeClaims(), status: 200, calls: 1},
		{desc: "refresh token by token_type", request: bearer("tok"), answer: withClaim("token_type", "refresh_token"), status: 401, challenge: challengeToken, calls: 1},
		{desc: "refresh token by Keycloak's typ", request: bearer("tok"), answer: withClaim("typ", "Refresh"), status: 401, challenge: challengeToken, calls: 1},
		{desc: "offline token by Keycloak's typ", request: bearer("tok"), answer: withClaim("typ", "Offline"), status: 401, challenge: challengeToken, calls: 1},
		{desc: "access token by Keycloak's typ", request: bearer("tok"), answer: withClaim("typ", "Bearer"), status: 200, calls: 1},
		{desc: "access token by Hydra's token_use", request: bearer("tok"), answer: withClaim("token_use", "access_token"), status: 200, calls: 1},
		{desc: "required scopes present", configure: func(c *Config) { c.RequiredScopes = []string{"read", "write"} }, request: bearer("tok"), answer: activeClaims(), status: 200, calls: 1},
		{desc: "scope as a list", configure: func(c *Config) { c.RequiredScopes = []string{"write"} }, request: bearer("tok"), answer: withClaim("scope", []string{"read", "write"}), status: 200, calls: 1},
		{desc: "required scope missing", configure: func(c *Config) { c.RequiredScopes = []string{"read", "admin"} }, request: bearer("tok"), answer: activeClaims(), status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", scope="read admin"`, calls: 1},
		{desc: "scopes are separated by SP only", configure: func(c *Config) { c.RequiredScopes = []string{"admin"} }, request: bearer("tok"),
			answer: withClaim("scope", "profile\u00a0admin read\tadmin"), status: 403, challenge: `Bearer realm="traefik", error="insufficient_scope", scope="admin"`, calls: 1},
		{desc: "scope is a prefix only", configure: func(c *Config) { c.RequiredScopes = []string{"rea"} }, request: bearer("tok"), answer: activeClaims(), status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", scope="rea"`, calls: 1},
		{desc: "no scope at all", configure: func(c *Config) { c.RequiredScopes = []string{"read"} }, request: bearer("tok"), answer: withClaim("scope", nil), status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", scope="read"`, calls: 1},
		{desc: "custom realm", configure: func(c *Config) { c.Realm = "api" }, status: 401, challenge: `Bearer realm="api"`},
	}
	for _, tc := range cases {
		tc := tc // yaegi v0.16.1 shares loop variables between iterations
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			if tc.answer != nil {
				as.answer("tok", tc.answer)
			}
			config := testConfig(as.URL)
			if tc.configure != nil {
				tc.configure(config)
			}
			m, next := newMiddleware(t, config)

			rec := serve(m, tc.request)

			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if got := as.callCount(); got != tc.calls {
				t.Errorf("endpoint calls = %d, want %d", got, tc.calls)
			}
			wantNext := 0
			if tc.status == http.StatusOK {
				wantNext = 1
			}
			if next.count() != wantNext {
				t.Errorf("backend requests = %d, want %d", next.count(), wantNext)
			}
			if strings.Contains(rec.Body.String(), "tok") {
				t.Errorf("the answer's body echoes the token: %q", rec.Body.String())
			}
		})
	}
}

// TestIntrospectionRequest: what the endpoint receives (RFC 7662 §2.1, RFC 6749 §2.3).
func TestIntrospectionRequest(t *testing.T) {
	cases := []struct {
		desc      string
		configure func(*Config)
		auth      string     // the Authorization header the endpoint must see
		form      url.Values // the form it must see, beside the token
	}{
		{
			desc: "client_secret_basic, the RFC 6749 §2.3.1 vector",
			configure: func(c *Config) {
				c.ClientID = "1PpG/Q 1"
				c.ClientSecret = "z/tZ9VwFZqApmIQ+ZH1I5pLk/uB4ud:X2/8bL+wfFTt1rFw="
			},
			auth: "Basic MVBwRyUyRlErMTp6JTJGdFo5VndGWnFBcG1JUSUyQlpIMUk1cExrJTJGdUI0dWQlM0FYMiUyRjhiTCUyQndmRlR0MXJGdyUzRA==",
			form: url.Values{"token_type_hint": {"access_token"}},
		},
		{
			desc:      "client_secret_post",
			configure: func(c *Config) { c.AuthMethod = "client_secret_post" },
			form:      url.Values{"token_type_hint": {"access_token"}, "client_id": {"traefik"}, "client_secret": {"s3cret-value"}},
		},
		{
			desc:      "none with a client id",
			configure: func(c *Config) { c.AuthMethod = "none"; c.ClientSecret = "" },
			form:      url.Values{"token_type_hint": {"access_token"}, "client_id": {"traefik"}},
		},
		{
			desc:      "none, no hint",
			configure: func(c *Config) { c.AuthMethod = "none"; c.ClientSecret = ""; c.ClientID = ""; c.TokenTypeHint = "" },
			form:      url.Values{},
		},
		{
			desc: "another hint",
			configure: func(c *Config) {
				c.AuthMethod = "none"
				c.ClientSecret = ""
				c.ClientID = ""
				c.TokenTypeHint = "urn:example:token"
			},
			form: url.Values{"token_type_hint": {"urn:example:token"}},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("to+k/=", activeClaims())
			config := testConfig(as.URL + "/oauth2/introspect?tenant=a")
			tc.configure(config)
			m, _ := newMiddleware(t, config)

			if rec := serve(m, bearer("to+k/=")); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			req, form := as.lastCall()
			if req.Method != http.MethodPost || req.URL.Path != "/oauth2/introspect" || req.URL.RawQuery != "tenant=a" {
				t.Errorf("request = %s %s, want POST /oauth2/introspect?tenant=a", req.Method, req.URL)
			}
			if got := req.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := req.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
			if got := req.Header.Get("Authorization"); got != tc.auth {
				t.Errorf("Authorization = %q, want %q", got, tc.auth)
			}
			if form.Get("token") != "to+k/=" {
				t.Errorf("token = %q, want to+k/=", form.Get("token"))
			}
			form.Del("token")
			if form.Encode() != tc.form.Encode() {
				t.Errorf("form = %q, want %q", form.Encode(), tc.form.Encode())
			}
		})
	}
}

func TestExtraHeaders(t *testing.T) {
	as, config := activeServer(t)
	config.Headers = map[string]string{"x-tenant": "blue", "Host": "auth.internal"}
	m, _ := newMiddleware(t, config)
	serve(m, bearer("tok"))
	req, _ := as.lastCall()
	if req.Header.Get("X-Tenant") != "blue" || req.Host != "auth.internal" {
		t.Errorf("X-Tenant = %q, Host = %q; want blue, auth.internal", req.Header.Get("X-Tenant"), req.Host)
	}
}

func TestClientSecretFile(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	path := writeFile(t, "secret", "from-a-file\n")
	config := testConfig(as.URL)
	config.ClientSecret = ""
	config.ClientSecretFile = path
	config.AuthMethod = "client_secret_post"
	m, _ := newMiddleware(t, config)
	serve(m, bearer("tok"))
	if _, form := as.lastCall(); form.Get("client_secret") != "from-a-file" {
		t.Errorf("client_secret = %q, want from-a-file", form.Get("client_secret"))
	}
}

func TestTLS(t *testing.T) {
	as := &authServer{answers: map[string]interface{}{"tok": activeClaims()}}
	as.Server = httptest.NewTLSServer(http.HandlerFunc(as.serve))
	defer as.Close()
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", as.Certificate().Raw)

	cases := []struct {
		desc      string
		configure func(*Config)
		status    int
	}{
		{"verified by default: an unknown CA fails", func(*Config) {}, 503},
		{"caFile trusts the server", func(c *Config) { c.CAFile = caFile }, 200},
		{"sslVerify false", func(c *Config) { c.SSLVerify = false }, 200},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig(as.URL)
			tc.configure(config)
			m, _ := newMiddleware(t, config)
			if rec := serve(m, bearer("tok")); rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
		})
	}
}

// TestTokenSources: where the token comes from, and what goes upstream.
func TestTokenSources(t *testing.T) {
	cases := []struct {
		desc      string
		configure func(*Config)
		request   func(*http.Request)
		upstream  func(*http.Request) string // what the backend got of the token
		want      string
	}{
		{
			desc:     "Authorization forwarded by default",
			request:  bearer("tok"),
			upstream: func(r *http.Request) string { return r.Header.Get("Authorization") },
			want:     "Bearer tok",
		},
		{
			desc:      "Authorization removed",
			configure: func(c *Config) { c.ForwardAuthorization = false },
			request:   bearer("tok"),
			upstream:  func(r *http.Request) string { return r.Header.Get("Authorization") },
			want:      "",
		},
		{
			desc:      "custom header holds the bare token",
			configure: func(c *Config) { c.TokenHeader = "x-api-token" },
			request:   func(r *http.Request) { r.Header.Set("X-Api-Token", "tok") },
			upstream:  func(r *http.Request) string { return r.Header.Get("X-Api-Token") },
			want:      "tok",
		},
		{
			desc:      "query parameter removed, the rest kept",
			configure: func(c *Config) { c.TokenQuery = "access_token"; c.ForwardAuthorization = false },
			request: func(r *http.Request) {
				r.URL.RawQuery = "a=1&access_token=tok&b=2"
				r.RequestURI = "/anything?" + r.URL.RawQuery
			},
			upstream: func(r *http.Request) string { return r.URL.RawQuery + " " + r.RequestURI },
			want:     "a=1&b=2 /anything?a=1&b=2",
		},
		{
			desc:      "cookie removed, other cookies kept",
			configure: func(c *Config) { c.TokenCookie = "session"; c.ForwardAuthorization = false },
			request: func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
				r.AddCookie(&http.Cookie{Name: "session", Value: "tok"})
				r.AddCookie(&http.Cookie{Name: "lang", Value: "en"})
			},
			upstream: func(r *http.Request) string { return r.Header.Get("Cookie") },
			want:     "theme=dark; lang=en",
		},
		{
			desc:      "only a cookie: the Authorization header is not required",
			configure: func(c *Config) { c.TokenCookie = "session"; c.TokenHeader = "" },
			request: func(r *http.Request) {
				r.AddCookie(&http.Cookie{Name: "session", Value: "tok"})
			},
			upstream: func(r *http.Request) string { return r.Header.Get("Cookie") },
			want:     "session=tok",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			_, config := activeServer(t)
			if tc.configure != nil {
				tc.configure(config)
			}
			m, next := newMiddleware(t, config)
			if rec := serve(m, tc.request); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if got := tc.upstream(next.lastRequest()); got != tc.want {
				t.Errorf("upstream got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestForwardHeaders: how claims are rendered as upstream headers. Spoofed copies are in
// TestHostileWorld.
func TestForwardHeaders(t *testing.T) {
	as := newAuthServer(t)
	claims := activeClaims()
	claims["uid"] = 9007199254740993 // beyond float64's exact integers
	claims["roles"] = []interface{}{"admin", "dev"}
	// Lists a comma-separated value could not tell from others: not forwarded.
	claims["groups"] = []interface{}{"u", "x,admin"}
	claims["teams"] = []interface{}{" a"}
	claims["nested"] = []interface{}{"u", []interface{}{"x,admin"}}
	claims["quoted"] = []interface{}{`"a`, `b"`}
	claims["org"] = map[string]interface{}{"name": "acme", "id": 7}
	claims["verified"] = true
	as.answer("tok", claims)
	config := testConfig(as.URL)
	config.ForwardHeaders = map[string]string{
		"X-Auth-Subject": "sub",
		"X-Auth-Uid":     "uid",
		"X-Auth-Roles":   "roles",
		"X-Auth-Org":     "org",
		"X-Auth-Missing": "nothing",
		"x-auth-client":  "client_id",
		"X-Verified":     "verified",
		"X-Auth-Groups":  "groups",
		"X-Auth-Teams":   "teams",
		"X-Auth-Nested":  "nested",
		"X-Auth-Quoted":  "quoted",
	}
	m, next := newMiddleware(t, config)

	rec := serve(m, func(r *http.Request) {
		bearer("tok")(r)
		r.Header["X-Unrelated"] = []string{"kept"}
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	got := next.lastRequest().Header
	want := http.Header{
		"Authorization":  {"Bearer tok"},
		"X-Auth-Subject": {"alice"},
		"X-Auth-Uid":     {"9007199254740993"},
		"X-Auth-Roles":   {"admin,dev"},
		"X-Auth-Org":     {`{"id":7,"name":"acme"}`},
		"X-Auth-Client":  {"app"},
		"X-Verified":     {"true"},
		"X-Unrelated":    {"kept"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backend headers:\n got %v\nwant %v", got, want)
	}
}

// preflight makes a request a CORS preflight.
func preflight(r *http.Request) {
	r.Method = http.MethodOptions
	r.Header.Set("Origin", "https://app.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
}

// TestSkipPreflight: skipPreflight lets through what browsers send as a CORS preflight,
// which carries no credentials; an OPTIONS request that carries any is checked as any other.
func TestSkipPreflight(t *testing.T) {
	plainOptions := func(r *http.Request) { r.Method = http.MethodOptions }
	with := func(edit func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) { preflight(r); edit(r) }
	}
	cases := []struct {
		desc    string
		skip    bool
		request func(*http.Request)
		status  int
		calls   int
	}{
		{"preflight passes with skipPreflight", true, preflight, 200, 0},
		{"preflight needs a token by default", false, preflight, 401, 0},
		{"OPTIONS that is no preflight needs a token", true, plainOptions, 401, 0},
		{"a preflight with an inactive token is checked", true, with(bearer("bad")), 401, 1},
		{"a preflight with an active token is checked", true, with(bearer("tok")), 200, 1},
		{"a preflight with a malformed token is checked", true, with(bearer("abc$def")), 400, 0},
		{"a preflight with a cookie is checked", true, with(func(r *http.Request) { r.Header.Set("Cookie", "session=x") }), 401, 0},
		{"a preflight with Basic credentials is checked", true, with(func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }), 401, 0},
		{"a preflight with a body is checked", true, with(func(r *http.Request) { r.ContentLength = 4 }), 401, 0},
		{"a preflight over HTTP/3, its length unknown", true, with(func(r *http.Request) { r.ProtoMajor, r.ContentLength = 3, -1 }), 200, 0},
		{"a form over HTTP/3 is checked", true, with(func(r *http.Request) {
			r.ProtoMajor, r.ContentLength = 3, -1
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}), 401, 0},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as, config := activeServer(t)
			config.SkipPreflight = tc.skip
			m, next := newMiddleware(t, config)
			if rec := serve(m, tc.request); rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if as.callCount() != tc.calls {
				t.Errorf("endpoint calls = %d, want %d", as.callCount(), tc.calls)
			}
			if reached := next.count() == 1; reached != (tc.status == http.StatusOK) {
				t.Errorf("backend reached: %v, want %v", reached, tc.status == http.StatusOK)
			}
		})
	}
}

// TestOptional: with optional, a request without a bearer token passes as anonymous, with
// no identity header a client could have forged; a token that is present is checked as always.
func TestOptional(t *testing.T) {
	spoofed := func(r *http.Request) {
		r.Header.Set("X-Auth-Subject", "admin")
		r.Header["X_Auth_Subject"] = []string{"admin"}
	}
	cases := []struct {
		desc      string
		request   func(*http.Request)
		status    int
		challenge string
		subject   string // X-Auth-Subject upstream
		calls     int
	}{
		{desc: "no token: anonymous", request: spoofed, status: 200},
		{desc: "another scheme is no bearer token: anonymous", request: func(r *http.Request) {
			spoofed(r)
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		}, status: 200},
		{desc: "an active token", request: func(r *http.Request) { spoofed(r); bearer("tok")(r) }, status: 200, subject: "alice", calls: 1},
		{desc: "an inactive token", request: func(r *http.Request) { spoofed(r); bearer("bad")(r) }, status: 401, challenge: challengeToken, calls: 1},
		{desc: "a malformed token", request: bearer("abc$def"), status: 400, challenge: challengeRequest},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as, config := activeServer(t)
			config.Optional = true
			config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub"}
			m, next := newMiddleware(t, config)

			rec := serve(m, tc.request)
			if rec.Code != tc.status || rec.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("status = %d, challenge %q; want %d, %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if as.callCount() != tc.calls {
				t.Errorf("endpoint calls = %d, want %d", as.callCount(), tc.calls)
			}
			if tc.status != http.StatusOK {
				if next.count() != 0 {
					t.Errorf("the backend was reached")
				}
				return
			}
			upstream := next.lastRequest().Header
			if got := upstream["X-Auth-Subject"]; upstream.Get("X-Auth-Subject") != tc.subject || len(got) > 1 {
				t.Errorf("X-Auth-Subject = %q, want %q", got, tc.subject)
			}
			if others := otherSpellings(upstream, "X-Auth-Subject"); len(others) > 0 {
				t.Errorf("the client's %v reached the backend", others)
			}
		})
	}
}

// TestCache: reuse within the TTLs, never past exp, counted in endpoint calls.
func TestCache(t *testing.T) {
	type step struct {
		advance time.Duration
		status  int
		calls   int // total endpoint calls after this request
	}
	cases := []struct {
		desc      string
		configure func(*Config)
		answer    map[string]interface{}
		expIn     time.Duration // when set, exp is this long after the clock's start
		steps     []step
	}{
		{
			desc:   "active reused for cacheTTL",
			answer: activeClaims(),
			steps:  []step{{0, 200, 1}, {29 * time.Second, 200, 1}, {2 * time.Second, 200, 2}, {time.Second, 200, 2}},
		},
		{
			desc:      "cacheTTL 0s calls every time",
			configure: func(c *Config) { c.CacheTTL = "0s" },
			answer:    activeClaims(),
			steps:     []step{{0, 200, 1}, {0, 200, 2}, {0, 200, 3}},
		},
		{
			desc:      "never past exp, even within clockSkew",
			configure: func(c *Config) { c.CacheTTL = "5m"; c.ClockSkew = "1m" },
			answer:    activeClaims(),
			expIn:     10 * time.Second,
			steps:     []step{{0, 200, 1}, {5 * time.Second, 200, 1}, {10 * time.Second, 200, 2}},
		},
		{
			desc:   "inactive reused for negativeCacheTTL",
			answer: map[string]interface{}{"active": false},
			steps:  []step{{0, 401, 1}, {4 * time.Second, 401, 1}, {2 * time.Second, 401, 2}},
		},
		{
			desc:      "negativeCacheTTL 0s",
			configure: func(c *Config) { c.NegativeCacheTTL = "0s" },
			answer:    map[string]interface{}{"active": false},
			steps:     []step{{0, 401, 1}, {0, 401, 2}},
		},
		{
			desc:   "expiry is checked on every hit",
			answer: activeClaims(),
			expIn:  5 * time.Second,
			steps:  []step{{0, 200, 1}, {4 * time.Second, 200, 1}, {40 * time.Second, 401, 2}},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			// exp is in whole seconds: start the clock on one, so steps are exact.
			clk := &clock{t: time.Unix(time.Now().Unix(), 0)}
			if tc.expIn != 0 {
				tc.answer["exp"] = clk.now().Add(tc.expIn).Unix()
			}
			as.answer("tok", tc.answer)
			config := testConfig(as.URL)
			if tc.configure != nil {
				tc.configure(config)
			}
			m, _ := newMiddleware(t, config)
			m.now = clk.now
			for i, s := range tc.steps {
				clk.advance(s.advance)
				if rec := serve(m, bearer("tok")); rec.Code != s.status {
					t.Errorf("step %d: status = %d, want %d", i, rec.Code, s.status)
				}
				if as.callCount() != s.calls {
					t.Errorf("step %d: endpoint calls = %d, want %d", i, as.callCount(), s.calls)
				}
			}
		})
	}
}

// cacheKeys lists the keys of the cache's map, which its slots bound.
func cacheKeys(m *middleware) []string {
	var keys []string
	// Named parameters: yaegi v0.16.1 panics calling a func literal with unnamed ones.
	m.state.cache.entries.Range(func(key, value interface{}) bool {
		keys = append(keys, key.(string))
		return true
	})
	return keys
}

// TestCacheHoldsNoToken: keys are hashes; the raw token is nowhere in the cache.
func TestCacheHoldsNoToken(t *testing.T) {
	as := newAuthServer(t)
	as.answer("secret-token-value", activeClaims())
	m, _ := newMiddleware(t, testConfig(as.URL))
	serve(m, bearer("secret-token-value"))
	if m.state.cache.len() != 1 {
		t.Fatalf("cache entries = %d, want 1", m.state.cache.len())
	}
	for _, key := range cacheKeys(m) {
		if strings.Contains(key, "secret-token-value") || len(key) != 32 {
			t.Errorf("cache key is not a SHA-256 digest: %q", key)
		}
	}
}

func TestCacheSize(t *testing.T) {
	as := newAuthServer(t)
	for _, tok := range []string{"a", "b", "c"} {
		as.answer(tok, activeClaims())
	}
	config := testConfig(as.URL)
	config.CacheSize = 2
	m, _ := newMiddleware(t, config)

	for _, tok := range []string{"a", "b", "a", "c"} { // "b" is now the least recently used
		serve(m, bearer(tok))
	}
	if m.state.cache.len() != 2 || as.callCount() != 3 {
		t.Fatalf("entries = %d, calls = %d; want 2 and 3", m.state.cache.len(), as.callCount())
	}
	serve(m, bearer("a"))
	serve(m, bearer("c"))
	if as.callCount() != 3 {
		t.Errorf("a and c were evicted: calls = %d, want 3", as.callCount())
	}
	serve(m, bearer("b"))
	if as.callCount() != 4 {
		t.Errorf("b was kept: calls = %d, want 4", as.callCount())
	}
}

// TestCacheBytes: an entry keeps what the routes sharing the cache read of an answer, not
// the answer, so a cache bounded in entries is bounded in bytes; an answer whose kept part
// is over maxEntryBytes is used for its request and not cached.
func TestCacheBytes(t *testing.T) {
	as := newAuthServer(t)
	big := strings.Repeat("x", 512<<10) // half a MiB of claims nobody forwards
	large := strings.Repeat("y", maxEntryBytes)
	for i := 0; i < 20; i++ {
		as.answer(fmt.Sprintf("big-%d", i), withClaim("profile", big))
	}
	as.answer("large-subject", withClaim("sub", large))
	config := testConfig(as.URL)
	config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub"}
	m, next := newMiddleware(t, config)

	for i := 0; i < 20; i++ {
		if rec := serve(m, bearer(fmt.Sprintf("big-%d", i))); rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200", rec.Code)
		}
		if got := next.lastRequest().Header.Get("X-Auth-Subject"); got != "alice" {
			t.Fatalf("X-Auth-Subject = %q, want alice", got)
		}
	}
	if entries, held := m.state.cache.len(), heldBytes(m.state.cache); entries != 20 || held > 20*1024 {
		t.Errorf("20 answers of %d KiB: %d entries holding %d bytes; want 20 entries, at most 1 KiB each", len(big)>>10, entries, held)
	}

	// A kept claim over the bound: admitted with it each time, never cached.
	for i := 1; i <= 2; i++ {
		calls := as.callCount()
		if rec := serve(m, bearer("large-subject")); rec.Code != http.StatusOK || as.callCount() != calls+1 {
			t.Fatalf("request %d: status = %d, endpoint calls %d; want 200 and one call", i, rec.Code, as.callCount()-calls)
		}
		if got := next.lastRequest().Header.Get("X-Auth-Subject"); got != large {
			t.Errorf("request %d: X-Auth-Subject has %d bytes, want %d", i, len(got), len(large))
		}
	}
	if entries := m.state.cache.len(); entries != 20 {
		t.Errorf("entries = %d after the large answer, want 20: it is not cached", entries)
	}
}

// heldBytes is what the cache's entries hold, as entrySize counts it.
func heldBytes(c *cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := 0
	for _, e := range c.slots {
		if e != nil {
			held += entrySize(e.key, e.res)
		}
	}
	return held
}

func TestStaleIfError(t *testing.T) {
	cases := []struct {
		desc         string
		staleIfError string
		exp          time.Duration
		advance      time.Duration
		status       int
	}{
		{"off: the endpoint's failure is a 503", "0s", time.Hour, 40 * time.Second, 503},
		{"on: the cached active result is served", "1m", time.Hour, 40 * time.Second, 200},
		{"on, but not longer than staleIfError past cacheTTL", "1m", time.Hour, 100 * time.Second, 503},
		{"on, but never past exp", "1m", 35 * time.Second, 40 * time.Second, 503},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("tok", withClaim("exp", time.Now().Add(tc.exp).Unix()))
			config := testConfig(as.URL)
			config.StaleIfError = tc.staleIfError
			config.ClockSkew = "0s"
			m, _ := newMiddleware(t, config)
			clk := &clock{t: time.Now()}
			m.now = clk.now

			if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
				t.Fatalf("first request: status = %d", rec.Code)
			}
			as.failWith(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(500) })
			clk.advance(tc.advance)
			if rec := serve(m, bearer("tok")); rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.status == http.StatusOK && as.callCount() != 2 {
				t.Errorf("endpoint calls = %d, want 2: the stale result is served only after a try", as.callCount())
			}
		})
	}
}

// TestStaleIfErrorNotWhenBusy: maxConcurrentIntrospections reached is not an endpoint
// failure: a cached answer past cacheTTL is not served stale, since any client can fill the
// calls with random tokens while the endpoint is well.
func TestStaleIfErrorNotWhenBusy(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	as.answer("other", activeClaims())
	config := testConfig(as.URL)
	config.StaleIfError = "1m"
	config.MaxConcurrentIntrospections = 1
	m, _ := newMiddleware(t, config)
	clk := &clock{t: time.Now()}
	m.now = clk.now
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
		t.Fatalf("first request: status = %d", rec.Code)
	}

	release := as.hold()
	held := make(chan int, 1)
	go func() { held <- serve(m, bearer("other")).Code }()
	waitFor(t, "the call for the other token", func() bool { return as.callCount() == 2 })
	clk.advance(40 * time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("cached token past cacheTTL while the calls are taken: status = %d, want 503", rec.Code)
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Errorf("the request holding the call got %d, want 200", code)
	}
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 3 {
		t.Errorf("once the call ended: status = %d, endpoint calls = %d; want 200 and 3", rec.Code, as.callCount())
	}
}

// TestCacheAgesMonotonic: an answer's age is measured on the monotonic clock, so a step
// back of the wall clock does not extend it; exp is still read on the wall clock.
func TestCacheAgesMonotonic(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", withClaim("exp", time.Now().Add(time.Hour).Unix()))
	m, next := newMiddleware(t, testConfig(as.URL)) // cacheTTL 30s
	clk := &clock{t: time.Now()}
	m.now = clk.now
	serve(m, bearer("tok"))

	// 31 s pass while the wall clock steps back an hour. A time's monotonic reading moves
	// with its wall one under Add, so the origin of the monotonic clock moves back instead:
	// to t.Sub(monoEpoch) that is 31 s.
	epoch := monoEpoch
	t.Cleanup(func() { monoEpoch = epoch })
	clk.advance(-time.Hour)
	monoEpoch = monoEpoch.Add(-time.Hour - 31*time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 2 {
		t.Errorf("31 s later, the wall clock an hour back: status = %d, endpoint calls = %d; want 200 and 2",
			rec.Code, as.callCount())
	}

	// The wall clock three hours on, 31 s later: past exp once the answer is judged again,
	// which a verdict waits for at most cacheTTL.
	clk.advance(3 * time.Hour)
	monoEpoch = monoEpoch.Add(3*time.Hour - 31*time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusUnauthorized || next.count() != 2 {
		t.Errorf("past exp on the wall clock: status = %d, backend requests = %d; want 401 and 2", rec.Code, next.count())
	}
}

// TestSingleFlight: concurrent requests for one new token make one call.
func TestSingleFlight(t *testing.T) {
	const requests = 20
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	m, next := newMiddleware(t, testConfig(as.URL))
	release := as.hold()

	var wg sync.WaitGroup
	codes := make([]int, requests)
	for i := 0; i < requests; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = serve(m, bearer("tok")).Code
		}()
	}
	// Let the endpoint answer once every other request waits on the call in flight.
	for deadline := time.Now().Add(10 * time.Second); waiting(m) < requests-1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()

	if as.callCount() != 1 {
		t.Errorf("endpoint calls = %d, want 1", as.callCount())
	}
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("request %d: status = %d", i, code)
		}
	}
	if next.count() != requests {
		t.Errorf("backend requests = %d, want %d", next.count(), requests)
	}
}

// TestWaiterLeaves: a request waiting on another's call stops waiting when it ends itself;
// the call goes on, and its answer serves the request that made it. The client that left
// says nothing about the endpoint: nothing is logged as a failure, nor then as a recovery,
// and no stale answer is served for it.
func TestWaiterLeaves(t *testing.T) {
	for _, staleIfError := range []string{"0s", "1m"} {
		staleIfError := staleIfError
		t.Run("staleIfError "+staleIfError, func(t *testing.T) { testWaiterLeaves(t, staleIfError) })
	}
}

func testWaiterLeaves(t *testing.T, staleIfError string) {
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	as, config := activeServer(t)
	config.StaleIfError = staleIfError
	m, next := newMiddleware(t, config)
	m.name = "auth@waiter"
	clk := &clock{t: time.Now()}
	m.now = clk.now
	// Cached, then past cacheTTL: with staleIfError, an answer a failure could fall back on.
	serve(m, bearer("tok"))
	clk.advance(40 * time.Second)
	release := as.hold()

	leader := make(chan int, 1)
	go func() { leader <- serve(m, bearer("tok")).Code }()
	waitFor(t, "the leader's call", func() bool { return as.callCount() == 2 })
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		waiter <- rec.Code
	}()
	waitFor(t, "the waiter", func() bool { return waiting(m) == 1 })
	cancel()

	// A deadline, not a timing: without it a waiter that never leaves would hang the test.
	timeout := time.After(10 * time.Second)
	select {
	case code := <-waiter:
		if code != http.StatusServiceUnavailable {
			t.Errorf("the waiter whose request ended got %d, want 503", code)
		}
	case <-timeout:
		t.Fatal("the waiter kept waiting after its request ended")
	}
	close(release)
	if code := <-leader; code != http.StatusOK {
		t.Errorf("the request that made the call got %d, want 200", code)
	}
	if as.callCount() != 2 || next.count() != 2 {
		t.Errorf("endpoint calls = %d, backend requests = %d; want 2 and 2", as.callCount(), next.count())
	}
	if lines := logs.since(0, m.name); len(lines) > 0 {
		t.Errorf("logged about the endpoint:\n%s", strings.Join(lines, "\n"))
	}
}

// waiting counts the requests waiting on calls in flight.
func waiting(m *middleware) int {
	f := m.state.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += len(c.waiters)
	}
	return n
}

// TestSharedAcrossInstances: routers and reloads (new instances of one endpoint and client)
// start warm, each with its own policy; another client has its own answers.
func TestSharedAcrossInstances(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	first, _ := newMiddleware(t, testConfig(as.URL))
	reload := testConfig(as.URL)
	reload.RequiredScopes = []string{"admin"}
	reload.ClientSecret = "rotated-secret"
	second, _ := newMiddleware(t, reload)
	otherClient := testConfig(as.URL)
	otherClient.ClientID = "another-client"
	third, _ := newMiddleware(t, otherClient)
	otherTenant := testConfig(as.URL)
	otherTenant.Headers = map[string]string{"Host": "tenant-b.example"}
	fourth, _ := newMiddleware(t, otherTenant)

	if rec := serve(first, bearer("tok")); rec.Code != http.StatusOK {
		t.Fatalf("first: status = %d", rec.Code)
	}
	if rec := serve(second, bearer("tok")); rec.Code != http.StatusForbidden {
		t.Errorf("second: status = %d, want 403 from the cached result", rec.Code)
	}
	if as.callCount() != 1 {
		t.Errorf("after two instances: endpoint calls = %d, want 1", as.callCount())
	}
	if rec := serve(third, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("third: status = %d", rec.Code)
	}
	if as.callCount() != 2 {
		t.Errorf("another clientId shares no answers: endpoint calls = %d, want 2", as.callCount())
	}
	// The extra headers can select what answers (a virtual host, a tenant): another answer.
	if rec := serve(fourth, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("fourth: status = %d", rec.Code)
	}
	if as.callCount() != 3 {
		t.Errorf("other extra headers share no answers: endpoint calls = %d, want 3", as.callCount())
	}
	if first.state != second.state || first.state == third.state {
		t.Errorf("state shared by endpoint and client: first==second %v, first==third %v", first.state == second.state, first.state == third.state)
	}
}

// TestInstanceTTLOnSharedCache: an instance with a shorter cacheTTL does not reuse an
// entry another instance stored for longer.
func TestInstanceTTLOnSharedCache(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	long := testConfig(as.URL)
	long.CacheTTL = "10m"
	short := testConfig(as.URL)
	short.CacheTTL = "10s"
	a, _ := newMiddleware(t, long)
	b, _ := newMiddleware(t, short)
	clk := &clock{t: time.Now()}
	a.now, b.now = clk.now, clk.now

	serve(a, bearer("tok"))
	clk.advance(20 * time.Second)
	serve(b, bearer("tok"))
	if as.callCount() != 2 {
		t.Errorf("endpoint calls = %d, want 2", as.callCount())
	}
}

// TestNewErrors: a bad configuration is an error that names the key and the value and

// TestHugeDurations: the largest durations New takes still admit a token within its exp
// and nbf and cache it, rather than overflowing the time arithmetic.
func TestHugeDurations(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", withClaim("nbf", time.Now().Add(-time.Hour).Unix()))
	config := testConfig(as.URL)
	config.ClockSkew, config.CacheTTL, config.StaleIfError, config.Timeout = "8760h", "8760h", "8760h", "8760h"
	m, next := newMiddleware(t, config)
	serve(m, bearer("tok"))
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || next.count() != 2 || as.callCount() != 1 {
		t.Errorf("status = %d, backend requests = %d, endpoint calls = %d; want 200, 2 and 1", rec.Code, next.count(), as.callCount())
	}
}

// never shows the secret.
func TestNewErrors(t *testing.T) {
	missing := filepath.Join(os.TempDir(), "no-such-tokengate-file")
	notPEM := writeFile(t, "not.pem", "hello")
	rsaFile := writePEM(t, "rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey))
	ecDER, _ := x509.MarshalECPrivateKey(testECKey)
	ecFile := writePEM(t, "ec.pem", "EC PRIVATE KEY", ecDER)
	certFile, keyFile := writeCertFiles(t, testCert(t, "traefik", nil, x509.ExtKeyUsageClientAuth))
	keysFile, _ := responseKeyFiles(t)
	hmacFile := writeFile(t, "hmac.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
	weakKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakDER, _ := x509.MarshalPKIXPublicKey(&weakKey.PublicKey)
	weakFile := writePEM(t, "weak.pem", "PUBLIC KEY", weakDER)
	cases := []struct {
		desc      string
		configure func(*Config)
		want      string
	}{
		{"endpoint missing", func(c *Config) { c.Endpoint = "" }, "endpoint is required"},
		{"endpoint not a URL", func(c *Config) { c.Endpoint = "auth.example/introspect" }, `endpoint "auth.example/introspect"`},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://auth.example/" }, `endpoint "ftp://auth.example/"`},
		{"endpoint with credentials", func(c *Config) { c.Endpoint = "https://u:pw@auth.example/" }, `endpoint "<userinfo>@auth.example/" carries credentials`},
		{"endpoint ftp with credentials", func(c *Config) { c.Endpoint = "ftp://u:pw@auth.example/" }, `endpoint "<userinfo>@auth.example/"`},
		{"endpoint unparsable with credentials", func(c *Config) { c.Endpoint = "http://u:pw@auth.example:port/" }, `endpoint "<userinfo>@auth.example:port/"`},
		{"authMethod unknown", func(c *Config) { c.AuthMethod = "client_secret_jwt" }, `authMethod "client_secret_jwt"`},
		{"basic without clientId", func(c *Config) { c.ClientID = "" }, `clientId is missing: authMethod "client_secret_basic" needs clientId`},
		{"post without secret", func(c *Config) { c.AuthMethod = "client_secret_post"; c.ClientSecret = "" }, `clientSecret is missing: authMethod "client_secret_post" needs`},
		{"none with a secret", func(c *Config) { c.AuthMethod = "none" }, `authMethod "none"`},
		{"secret and secret file", func(c *Config) { c.ClientSecretFile = missing }, "clientSecret and clientSecretFile"},
		{"secret file missing", func(c *Config) { c.ClientSecret = ""; c.ClientSecretFile = missing }, `clientSecretFile "` + missing},
		{"caFile missing", func(c *Config) { c.CAFile = missing }, `caFile "` + missing},
		{"caFile not PEM", func(c *Config) { c.CAFile = notPEM }, `caFile "` + notPEM + `" holds no PEM`},
		{"timeout not a duration", func(c *Config) { c.Timeout = "5" }, `timeout "5"`},
		{"timeout zero", func(c *Config) { c.Timeout = "0s" }, `timeout "0s"`},
		{"clockSkew negative", func(c *Config) { c.ClockSkew = "-1s" }, `clockSkew "-1s"`},
		{"cacheTTL not a duration", func(c *Config) { c.CacheTTL = "forever" }, `cacheTTL "forever"`},
		{"cacheTTL near the int64 limit", func(c *Config) { c.CacheTTL = "2562047h" }, `cacheTTL "2562047h" is over 8760h`},
		{"timeout near the int64 limit", func(c *Config) { c.Timeout = "2562047h" }, `timeout "2562047h" is over 8760h`},
		{"clockSkew over a year", func(c *Config) { c.ClockSkew = "8761h" }, `clockSkew "8761h" is over 8760h`},
		{"staleIfError over a year", func(c *Config) { c.StaleIfError = "8761h" }, `staleIfError "8761h" is over 8760h`},
		{"negativeCacheTTL over a year", func(c *Config) { c.NegativeCacheTTL = "8761h" }, `negativeCacheTTL "8761h" is over 8760h`},
		{"headers twice in two letter cases", func(c *Config) { c.Headers = map[string]string{"X-Tenant": "a", "x-tenant": "b"} },
			"headers: X-Tenant is given twice"},
		{"tokenQuery with an escape", func(c *Config) { c.TokenQuery = "access%5Ftoken" }, `tokenQuery "access%5Ftoken" has characters`},
		{"tokenQuery with a space", func(c *Config) { c.TokenQuery = "access token" }, `tokenQuery "access token" has characters`},
		{"tokenCookie not a cookie name", func(c *Config) { c.TokenCookie = "a=b" }, `tokenCookie "a=b" is not a valid cookie name`},
		{"endpoint with a key in its query", func(c *Config) { c.Endpoint = "ftp://auth.example/?api_key=s3cret-value" },
			`endpoint "ftp://auth.example/?<redacted>"`},
		{"endpoint with a '#' in its password", func(c *Config) { c.Endpoint = "https://u:s3cret-value#x@auth.example/" },
			`endpoint "<userinfo>@auth.example/"`},
		{"headers Host twice, one empty", func(c *Config) { c.Headers = map[string]string{"Host": "", "host": "as.example"} },
			"headers: Host is given twice"},
		{"responseFormat jwt over plain http", func(c *Config) {
			c.Endpoint, c.ResponseFormat, c.ResponseKeysFile = "http://auth.example/introspect", "jwt", keysFile
		}, `endpoint "http://auth.example/introspect" is plain http: responseFormat "jwt" needs https`},
		{"negativeCacheTTL", func(c *Config) { c.NegativeCacheTTL = "5 s" }, `negativeCacheTTL "5 s"`},
		{"staleIfError", func(c *Config) { c.StaleIfError = "x" }, `staleIfError "x"`},
		{"cacheSize zero", func(c *Config) { c.CacheSize = 0 }, "cacheSize 0"},
		{"maxTokenLength zero", func(c *Config) { c.MaxTokenLength = 0 }, "maxTokenLength 0"},
		{"maxConcurrentIntrospections zero", func(c *Config) { c.MaxConcurrentIntrospections = 0 }, "maxConcurrentIntrospections 0"},
		{"tokenHeader invalid", func(c *Config) { c.TokenHeader = "X Token" }, `tokenHeader "X Token"`},
		{"no token source", func(c *Config) { c.TokenHeader = "" }, "tokenHeader, tokenQuery and tokenCookie"},
		{"realm with a quote", func(c *Config) { c.Realm = `a"b` }, `realm "a\"b"`},
		{"scope with a quote", func(c *Config) { c.RequiredScopes = []string{`re"ad`} }, `requiredScopes: "re\"ad"`},
		{"forwardHeaders bad name", func(c *Config) { c.ForwardHeaders = map[string]string{"X Bad": "sub"} }, `forwardHeaders: "X Bad"`},
		{"forwardHeaders empty claim", func(c *Config) { c.ForwardHeaders = map[string]string{"X-Sub": " "} }, "forwardHeaders.X-Sub"},
		{"forwardHeaders the tokenHeader", func(c *Config) { c.ForwardHeaders = map[string]string{"authorization": "sub"} }, "forwardHeaders.authorization"},
		{"forwardHeaders name with 6 separators", func(c *Config) { c.ForwardHeaders = map[string]string{"X-A-B-C-D-E-F": "sub"} }, "forwardHeaders: X-A-B-C-D-E-F has more than 5"},
		{"tokenHeader with 6 separators", func(c *Config) { c.TokenHeader = "X.A.B.C.D.E_F" }, "tokenHeader X.A.B.C.D.E_F has more than 5"},
		{"headers bad name", func(c *Config) { c.Headers = map[string]string{"X:Y": "1"} }, `headers: "X:Y"`},
		{"headers CRLF", func(c *Config) { c.Headers = map[string]string{"X-Y": "a\r\nb"} }, "headers.X-Y"},
		{"headers second authentication", func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }, "headers.authorization"},

		{"private_key_jwt with a secret", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.PrivateKeyFile = rsaFile }, `authMethod "private_key_jwt" sends no secret`},
		{"private_key_jwt without a key", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = "" }, "privateKeyFile is missing"},
		{"private_key_jwt without clientId", func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.ClientID, c.PrivateKeyFile = "private_key_jwt", "", "", rsaFile
		}, `clientId is missing: authMethod "private_key_jwt"`},
		{"privateKeyFile missing", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = missing }, `privateKeyFile "` + missing},
		{"privateKeyFile not PEM", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = notPEM }, `privateKeyFile "` + notPEM + `" holds no PEM`},
		{"privateKeyFile a certificate", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = certFile }, `holds a "CERTIFICATE" block`},
		{"privateKeyFile with another authMethod", func(c *Config) { c.PrivateKeyFile = rsaFile }, `privateKeyFile "` + rsaFile + `" is only read with authMethod "private_key_jwt"`},
		{"signingAlg unknown", func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.PrivateKeyFile, c.SigningAlg = "private_key_jwt", "", rsaFile, "HS256"
		}, `signingAlg "HS256" is not one of RS256, PS256, ES256`},
		{"signingAlg for another key", func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.PrivateKeyFile, c.SigningAlg = "private_key_jwt", "", rsaFile, "ES256"
		}, `holds an RSA key; signingAlg "ES256" needs an EC P-256 key`},
		{"signingAlg RS256 with an EC key", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = ecFile }, `holds an EC P-256 key; signingAlg "RS256" needs an RSA key`},
		{"tls_client_auth without a certificate", func(c *Config) { c.AuthMethod = "tls_client_auth"; c.ClientSecret = "" }, `tlsCertFile and tlsKeyFile are missing`},
		{"tlsCertFile without tlsKeyFile", func(c *Config) { c.TLSCertFile = certFile }, `tlsCertFile "` + certFile + `" is set without tlsKeyFile`},
		{"tlsKeyFile without tlsCertFile", func(c *Config) { c.TLSKeyFile = keyFile }, `tlsKeyFile "` + keyFile + `" is set without tlsCertFile`},
		{"tlsCertFile over http", func(c *Config) { c.Endpoint = "http://auth.example/"; c.TLSCertFile, c.TLSKeyFile = certFile, keyFile }, `tlsCertFile "` + certFile + `" needs an https endpoint`},
		{"tlsKeyFile not the certificate's key", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, ecFile }, `tlsCertFile "` + certFile + `" and tlsKeyFile "` + ecFile + `"`},
		{"responseFormat unknown", func(c *Config) { c.ResponseFormat = "jws" }, `responseFormat "jws" is not json or jwt`},
		{"responseFormat jwt without keys", func(c *Config) { c.ResponseFormat = "jwt" }, "responseKeysFile is missing"},
		{"responseFormat jwt without clientId", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.AuthMethod, c.ClientSecret, c.ClientID = "jwt", keysFile, "none", "", ""
		}, `clientId is missing: responseFormat "jwt"`},
		{"responseKeysFile with json", func(c *Config) { c.ResponseKeysFile = keysFile }, `responseKeysFile "` + keysFile + `" is only read with responseFormat "jwt"`},
		{"responseKeysFile missing", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = missing }, `responseKeysFile "` + missing},
		{"responseKeysFile a private key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = rsaFile }, `responseKeysFile "` + rsaFile + `": holds a "RSA PRIVATE KEY" block`},
		{"responseKeysFile only an HMAC key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = hmacFile }, `responseKeysFile "` + hmacFile + `" holds no RSA or EC public key`},
		{"responseKeysFile a weak RSA key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = weakFile }, `an RSA key of 1024 bits is too weak`},
		{"forwardIntrospectionJWT with json", func(c *Config) { c.ForwardIntrospectionJWT = "X-Jwt" }, `forwardIntrospectionJWT "X-Jwt" needs responseFormat "jwt"`},
		{"forwardIntrospectionJWT bad name", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.ForwardIntrospectionJWT = "jwt", keysFile, "X Jwt"
		}, `forwardIntrospectionJWT "X Jwt" is not a valid header name`},
		{"forwardIntrospectionJWT also a forwardHeader", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.ForwardIntrospectionJWT = "jwt", keysFile, "X_Jwt"
			c.ForwardHeaders = map[string]string{"X-Jwt": "sub"}
		}, `forwardIntrospectionJWT "X_Jwt" is also in forwardHeaders`},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig("https://auth.example/introspect")
			tc.configure(config)
			_, err := New(context.Background(), &backend{}, config, "auth@test")
			if err == nil {
				t.Fatalf("New accepted the configuration, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-value") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

// TestConfigForms: values as Traefik decodes them from labels ("a, b" lists).
func TestConfigForms(t *testing.T) {
	_, config := activeServer(t)
	config.RequiredScopes = []string{" read ", "", "write"}
	config.Audiences = []string{" api"}
	m, _ := newMiddleware(t, config)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	if fmt.Sprint(m.requiredScopes) != "[read write]" {
		t.Errorf("requiredScopes = %q", m.requiredScopes)
	}

	config.RequiredScopes = []string{"read admin"}
	m, _ = newMiddleware(t, config)
	rec := serve(m, bearer("tok"))
	if want := `Bearer realm="traefik", error="insufficient_scope", scope="read admin"`; rec.Header().Get("WWW-Authenticate") != want {
		t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), want)
	}
}

func TestCreateConfigIsFresh(t *testing.T) {
	a, b := CreateConfig(), CreateConfig()
	a.RequiredScopes = append(a.RequiredScopes, "read")
	a.ForwardHeaders["X-Sub"] = "sub"
	a.Headers["X-Tenant"] = "a"
	if len(b.RequiredScopes) != 0 || len(b.ForwardHeaders) != 0 || len(b.Headers) != 0 {
		t.Errorf("CreateConfig shares maps or slices between calls")
	}
}

// TestReloadResizesCache: a reload with a smaller cacheSize shrinks the shared cache.
func TestReloadResizesCache(t *testing.T) {
	as := newAuthServer(t)
	config := testConfig(as.URL)
	m, _ := newMiddleware(t, config)
	for _, tok := range []string{"a", "b", "c", "d"} {
		serve(m, bearer(tok))
	}
	config.CacheSize = 2
	reloaded, _ := newMiddleware(t, config)
	if reloaded.state.cache.len() != 2 {
		t.Errorf("cache entries after the reload = %d, want 2", reloaded.state.cache.len())
	}
}

// statesFor returns the registry's states whose endpoint starts with prefix, and the
// entries their caches hold.
func statesFor(prefix string) (int, int) {
	registryMu.Lock()
	defer registryMu.Unlock()
	states, entries := 0, 0
	for key, state := range registry {
		if strings.HasPrefix(key, prefix) {
			states++
			entries += state.cache.len()
		}
	}
	return states, entries
}

// TestSharedStatesFreed: reloads as Traefik v3 makes them (the old configuration's ctx is
// cancelled, then New builds the new one), each with a new endpoint URL, leave only the
// live state and its entries in the registry once idleStateGrace has passed.
func TestSharedStatesFreed(t *testing.T) {
	grace := idleStateGrace
	idleStateGrace = 0
	t.Cleanup(func() { idleStateGrace = grace })
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	prefix := as.URL + "/reload-"

	cancel := func() {}
	for i := 0; i < 200; i++ {
		cancel()
		ctx, cancelThis := context.WithCancel(context.Background())
		cancel = cancelThis
		handler, err := New(ctx, &backend{}, testConfig(fmt.Sprintf("%s%d", prefix, i)), "auth@reload")
		if err != nil {
			t.Fatal(err)
		}
		if rec := serve(handler, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("reload %d: status = %d", i, rec.Code)
		}
	}
	waitFor(t, "the idle states to go", func() bool { states, _ := statesFor(prefix); return states == 1 })
	if states, entries := statesFor(prefix); states != 1 || entries != 1 {
		t.Errorf("after 200 reloads: %d states holding %d entries, want 1 and 1", states, entries)
	}
	// The last one goes once its grace has passed, with no New or release after it.
	idleStateGrace = int64(10 * time.Millisecond)
	cancel()
	waitFor(t, "the last state to go", func() bool { states, _ := statesFor(prefix); return states == 0 })
}

// TestReloadStartsWarm: Traefik v3 cancels the old configuration's ctx before it builds the
// new one; within idleStateGrace the new instance still finds the cached answers.
func TestReloadStartsWarm(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	config := testConfig(as.URL + "/warm")

	ctx, cancel := context.WithCancel(context.Background())
	first, err := New(ctx, &backend{}, config, "auth@warm")
	if err != nil {
		t.Fatal(err)
	}
	serve(first, bearer("tok"))
	state := first.(*middleware).state
	cancel()
	waitFor(t, "the release", func() bool {
		registryMu.Lock()
		defer registryMu.Unlock()
		return state.users == 0
	})

	reloaded, err := New(context.Background(), &backend{}, config, "auth@warm")
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(reloaded, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 1 {
		t.Errorf("after the reload: status = %d, endpoint calls = %d; want 200 and 1", rec.Code, as.callCount())
	}
	// The old instance still serves requests Traefik routed to it.
	if rec := serve(first, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 1 {
		t.Errorf("the old instance: status = %d, endpoint calls = %d; want 200 and 1", rec.Code, as.callCount())
	}
}

// TestProxyFromEnvironment: the endpoint is called through HTTP_PROXY/HTTPS_PROXY when
// Traefik's environment sets them, as SECURITY.md says (Go's default, and ForwardAuth's).
func TestProxyFromEnvironment(t *testing.T) {
	m, _ := newMiddleware(t, testConfig("https://auth.example/introspect"))
	if transport, ok := m.state.client.Transport.(*http.Transport); !ok || transport.Proxy == nil {
		t.Errorf("the endpoint's transport ignores the proxy environment")
	}
}
