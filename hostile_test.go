package introspection

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leak starts every token the adversarial suite sends: if the log holds it, a token (or a
// piece of one) was logged.
const leak = "LeakCheck"

// TestHostileWorld is the adversarial suite: what a hostile endpoint, an outage, forged
// headers and floods do, beyond the situations of the README's Behaviour table, which
// TestBehaviour holds (with their own check of the log). Every check is a status, a
// header, what the backend got or a count of endpoint calls. The log is
// captured for the whole suite, and the last group checks it holds no token, no client
// secret and no Authorization value.
func TestHostileWorld(t *testing.T) {
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)

	t.Run("a hostile endpoint", testHostileEndpoint)
	t.Run("outage and recovery", func(t *testing.T) { testOutage(t, &logs) })
	t.Run("spoofed identity headers", testSpoofing)
	t.Run("floods", func(t *testing.T) { testFloods(t, &logs) })
	t.Run("a key in the endpoint's query", func(t *testing.T) { testEndpointKey(t, &logs) })
	t.Run("secrets never logged", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "introspection failed") {
			t.Fatalf("the suite logged no failure, so this check proves nothing: %q", out)
		}
		for _, secret := range []string{leak, "s3cret-value", basicCredentials("traefik", "s3cret-value"), endpointKey} {
			if strings.Contains(out, secret) {
				t.Errorf("the log shows %q:\n%s", secret, out)
			}
		}
	})
}

// endpointKey is an API key some gateways want in the endpoint's query.
const endpointKey = "k3y-in-the-query"

// testEndpointKey: an endpoint that cannot be reached is logged without its query, where
// Go's error would quote the whole URL.
func testEndpointKey(t *testing.T, logs *lockedBuffer) {
	// Port 1 on the loopback: nothing listens there, the call fails at once. Its state goes
	// with the test, so that a second run (-count) logs its failure again.
	t.Cleanup(func() { forgetStates("http://127.0.0.1:1") })
	m, _ := newMiddleware(t, testConfig("http://127.0.0.1:1/introspect?api_key="+endpointKey))
	m.name = "auth@key"
	logStart := len(logs.String())
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	lines := logs.since(logStart, m.name)
	if len(lines) != 1 || !strings.Contains(lines[0], `"http://127.0.0.1:1/introspect?<redacted>"`) {
		t.Errorf("log lines %q, want one that names the endpoint without its query", lines)
	}
}

// testHostileEndpoint: an endpoint that fails as a hostile one would, beyond the plain
// failures of the Behaviour table (TestBehaviour/endpoint-failure): its body echoes the
// token and the credentials, it closes the connection mid-body, it redirects the call,
// token and all, to another host. Each row sends two requests with its own token: a 503
// without a challenge each time, the second calls again, and the client gets nothing of
// the endpoint's body.
func testHostileEndpoint(t *testing.T) {
	// What an endpoint echoes of the token and the credentials must reach neither the log
	// nor the client.
	status := func(code int) http.HandlerFunc {
		return func(rw http.ResponseWriter, req *http.Request) {
			rw.WriteHeader(code)
			io.WriteString(rw, "echoing "+req.FormValue("token")+" "+req.Header.Get("Authorization"))
		}
	}
	// The redirect target records anything it receives: it must receive nothing.
	var targetCalls int64
	target := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		atomic.AddInt64(&targetCalls, 1)
		json.NewEncoder(rw).Encode(activeClaims())
	}))
	defer target.Close()
	redirect := func(code int) http.HandlerFunc {
		return func(rw http.ResponseWriter, req *http.Request) {
			http.Redirect(rw, req, target.URL+"/introspect?token="+req.FormValue("token"), code)
		}
	}
	cases := []struct {
		path      string
		behaviour http.HandlerFunc
	}{
		{"/close-mid-body", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Length", "100")
			io.WriteString(rw, `{"active":tr`)
			if conn, _, err := rw.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		}},
		{"/500-echoing", status(500)},
		{"/502-echoing", status(502)},
		{"/429-echoing", status(429)},
		{"/400-echoing", status(400)},
		{"/401-echoing", status(401)},
		// A 301, 302 or 303 followed would carry the token in the URL; a 307 or 308 also the
		// form, with the client credentials.
		{"/301-elsewhere", redirect(301)},
		{"/302-elsewhere", redirect(302)},
		{"/303-elsewhere", redirect(303)},
		{"/307-elsewhere", redirect(307)},
		{"/308-elsewhere", redirect(308)},
	}

	// One handler that looks the path up, not a closure per row: under yaegi v0.16.1 the
	// closures a loop hands to compiled code (a ServeMux) all see its last iteration.
	var mu sync.Mutex
	calls := map[string]int{}
	behaviours := map[string]http.HandlerFunc{}
	for _, tc := range cases {
		behaviours[tc.path] = tc.behaviour
	}
	endpoint := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		mu.Lock()
		calls[req.URL.Path]++
		mu.Unlock()
		behaviours[req.URL.Path](rw, req)
	}))
	defer endpoint.Close()

	for _, tc := range cases {
		tc := tc
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			m, next := newMiddleware(t, testConfig(endpoint.URL+tc.path))
			token := leak + tc.path
			for i := 1; i <= 2; i++ {
				rec := serve(m, bearer(token))
				if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("WWW-Authenticate") != "" {
					t.Errorf("request %d: status %d, challenge %q; want 503 and none", i, rec.Code, rec.Header().Get("WWW-Authenticate"))
				}
				if strings.Contains(rec.Body.String(), leak) || strings.Contains(rec.Body.String(), "echoing") {
					t.Errorf("request %d: the answer's body passes on the token or the endpoint's body: %q", i, rec.Body.String())
				}
			}
			mu.Lock()
			got := calls[tc.path]
			mu.Unlock()
			if got != 2 || next.count() != 0 {
				t.Errorf("endpoint calls = %d, backend requests = %d; want 2 and 0", got, next.count())
			}
		})
	}
	if n := atomic.LoadInt64(&targetCalls); n != 0 {
		t.Errorf("the redirect target got %d requests, want none: redirects carry the token and credentials", n)
	}
}

// testOutage: the endpoint goes down and comes back on the same address. Meanwhile a new
// token gets 503, a cached one is served stale (staleIfError) until its exp and no further,
// and the log has one line per interval, not one per request. Once the endpoint is back,
// requests pass again, with the same middleware.
func testOutage(t *testing.T, logs *lockedBuffer) {
	clk := &clock{t: time.Unix(time.Now().Unix(), 0)}
	as := newAuthServer(t)
	cached, fresh := leak+"-cached", leak+"-new"
	as.answer(cached, withClaim("exp", clk.now().Add(90*time.Second).Unix()))
	as.answer(fresh, withClaim("exp", nil))
	config := testConfig(as.URL)
	config.StaleIfError = "2m"
	config.ClockSkew = "0s"
	m, next := newMiddleware(t, config)
	m.name = "auth@outage"
	m.now = clk.now
	logStart := len(logs.String())

	step := func(desc, token string, want int) {
		t.Helper()
		if rec := serve(m, bearer(token)); rec.Code != want {
			t.Errorf("%s: status = %d, want %d", desc, rec.Code, want)
		}
	}
	step("before the outage", cached, 200)

	addr := as.Listener.Addr().String()
	as.Close()
	clk.advance(40 * time.Second)
	step("down: cached token past cacheTTL, within staleIfError", cached, 200)
	for i := 0; i < 20; i++ {
		step("down: a token never seen", fresh, 503)
	}
	clk.advance(60 * time.Second)
	step("down: cached token past its exp", cached, 503)

	restarted := httptest.NewUnstartedServer(http.HandlerFunc(as.serve))
	restarted.Listener.Close()
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the endpoint cannot come back on %s: %v", addr, err)
	}
	restarted.Listener = listener
	restarted.Start()
	defer restarted.Close()
	as.answer(cached, withClaim("exp", clk.now().Add(time.Hour).Unix()))
	step("back: the token that was cached", cached, 200)
	step("back: the token never seen", fresh, 200)

	if as.callCount() != 3 || next.count() != 4 {
		t.Errorf("endpoint calls = %d, backend requests = %d; want 3 and 4", as.callCount(), next.count())
	}
	want := []string{
		"introspection failed, serving a cached result (staleIfError): ",
		"introspection failed, answering 503: ",
		"introspection works again (failed requests meanwhile: 22)",
	}
	lines := logs.since(logStart, m.name)
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		if !strings.Contains(line, want[i]) {
			t.Errorf("log line %d = %q, want it to say %q", i+1, line, want[i])
		}
	}
	if !strings.HasSuffix(lines[1], "(failed requests since the last report: 21)") {
		t.Errorf("the second line does not count the requests it stands for: %q", lines[1])
	}
}

// testSpoofing: identity headers reach the backend only as the plugin set them, in any
// spelling a backend may fold together, on every path; the token goes nowhere upstream
// when forwardAuthorization is false.
func testSpoofing(t *testing.T) {
	as := newAuthServer(t)
	token := leak + "-spoof"
	claims := activeClaims()
	claims["evil"] = "alice\r\nX-Admin: true"
	as.answer(token, claims)

	spoofs := []string{"X-Auth-Subject", "x-auth-subject", "X_Auth_Subject", "X.Auth.Subject", "X-AUTH-SUBJECT", "x_auth.subject", "X-Auth-Evil", "X_Auth_Evil"}
	withSpoofs := func(token string) func(*http.Request) {
		return func(r *http.Request) {
			if token != "" {
				bearer(token)(r)
			}
			for _, name := range spoofs {
				r.Header[name] = []string{"mallory"}
			}
		}
	}
	// identity lists what reached the backend under any spelling of the forwarded headers.
	identity := func(r *http.Request) string {
		var got []string
		for name, values := range r.Header {
			if folded := spoofName(name); folded == "x-auth-subject" || folded == "x-auth-evil" {
				got = append(got, name+"="+strings.Join(values, ","))
			}
		}
		return strings.Join(got, " ")
	}
	config := testConfig(as.URL)
	config.SkipPreflight = true
	config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub", "X-Auth-Evil": "evil"}

	cases := []struct {
		desc     string
		request  func(*http.Request)
		status   int
		identity string // what the backend got, "" when nothing
	}{
		{"admitted: only the plugin's value, the CR/LF claim dropped", withSpoofs(token), 200, "X-Auth-Subject=alice"},
		{"refused: the backend is not reached", withSpoofs(leak + "-unknown"), 401, ""},
		{"preflight: passes without any of them", func(r *http.Request) { withSpoofs("")(r); preflight(r) }, 200, ""},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			m, next := newMiddleware(t, config)
			if rec := serve(m, tc.request); rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.status != http.StatusOK {
				if next.count() != 0 {
					t.Errorf("backend reached %d times", next.count())
				}
				return
			}
			if got := identity(next.lastRequest()); got != tc.identity {
				t.Errorf("backend identity headers = %q, want %q", got, tc.identity)
			}
		})
	}

	// Over a real connection, the spellings as a client writes them: Go's server gives each
	// its canonical form, which is what the plugin deletes.
	t.Run("on the wire: every spelling and letter case", func(t *testing.T) {
		m, next := newMiddleware(t, config)
		server := httptest.NewServer(m)
		defer server.Close()
		conn, err := net.Dial("tcp", server.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		raw := "GET /anything HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer " + token + "\r\nConnection: close\r\n"
		for _, name := range spoofs {
			raw += name + ": mallory\r\n"
		}
		if _, err := io.WriteString(conn, raw+"\r\n"); err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(conn)
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 200 ")) {
			t.Fatalf("answer %q, want 200", answer)
		}
		if got := identity(next.lastRequest()); got != "X-Auth-Subject=alice" {
			t.Errorf("backend identity headers = %q, want %q", got, "X-Auth-Subject=alice")
		}
	})

	// The token header's other spellings never go upstream, whether the token does or not
	// (TestTokenSources has its removal from the header, the query and the cookie).
	sources := func(c *Config) {
		c.TokenHeader = "X-Api-Token"
		c.TokenQuery = "access_token"
		c.TokenCookie = "session"
	}
	upstream := func(r *http.Request) string {
		var got []string
		for name, values := range r.Header {
			if spoofName(name) == "x-api-token" {
				got = append(got, name+"="+strings.Join(values, ","))
			}
		}
		return strings.Join(got, " ")
	}
	forged := func(r *http.Request) {
		r.Header["X_Api_Token"] = []string{"forged"}
		r.Header["X.Api.Token"] = []string{"forged"}
	}
	removal := []struct {
		desc      string
		configure func(*Config)
		request   func(*http.Request)
		want      string
	}{
		{"token removed: the header and its other spellings", func(c *Config) { sources(c); c.ForwardAuthorization = false },
			func(r *http.Request) { r.Header.Set("X-Api-Token", token); forged(r) }, ""},
		{"token in the query removed: no spelling of the header either", func(c *Config) { sources(c); c.ForwardAuthorization = false },
			func(r *http.Request) { r.URL.RawQuery = "access_token=" + token; forged(r) }, ""},
		{"token forwarded: the checked header only", sources,
			func(r *http.Request) { r.Header.Set("X-Api-Token", token); forged(r) }, "X-Api-Token=" + token},
	}
	for _, tc := range removal {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig(as.URL)
			tc.configure(config)
			m, next := newMiddleware(t, config)
			if rec := serve(m, tc.request); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if got := upstream(next.lastRequest()); got != tc.want {
				t.Errorf("upstream got %q, want %q", got, tc.want)
			}
		})
	}
}

// testFloods: random tokens cannot grow memory past cacheSize or push out the tokens in
// use, and a slow endpoint cannot make the plugin pile up calls: past
// maxConcurrentIntrospections a new token gets 503 at once.
func testFloods(t *testing.T, logs *lockedBuffer) {
	t.Run("random tokens answered inactive", func(t *testing.T) {
		as := newAuthServer(t)
		hot := leak + "-hot"
		as.answer(hot, activeClaims())
		config := testConfig(as.URL)
		config.CacheSize = 50
		m, _ := newMiddleware(t, config)
		for i := 0; i < 500; i++ {
			if i%10 == 0 {
				if rec := serve(m, bearer(hot)); rec.Code != http.StatusOK {
					t.Fatalf("the token in use: status = %d, want 200", rec.Code)
				}
			}
			if rec := serve(m, bearer(leak+"-random-"+strconv.Itoa(i))); rec.Code != http.StatusUnauthorized {
				t.Fatalf("random token: status = %d, want 401", rec.Code)
			}
		}
		if calls := as.callCount(); calls != 501 {
			t.Errorf("endpoint calls = %d, want 501: one per random token, one for the token in use", calls)
		}
		if m.state.cache.len() != 50 || len(cacheKeys(m)) != 50 || len(m.state.flight.calls) != 0 {
			t.Errorf("cache slots %d, map entries %d, calls in flight %d; want 50, 50, 0",
				m.state.cache.len(), len(cacheKeys(m)), len(m.state.flight.calls))
		}
	})

	t.Run("a slow endpoint: calls in flight are bounded", func(t *testing.T) {
		const bound = 4
		release := make(chan struct{})
		released := false
		unblock := func() {
			if !released {
				released = true
				close(release)
			}
		}
		as := newAuthServer(t)
		// A cleanup, which runs before the server's Close waits for the handlers; not a
		// defer: under yaegi v0.16.1 a deferred call of a func literal never returns.
		t.Cleanup(unblock)
		var mu sync.Mutex
		connections := map[string]bool{} // the client ends of the connections calls came on
		as.failWith(func(rw http.ResponseWriter, req *http.Request) {
			mu.Lock()
			connections[req.RemoteAddr] = true
			mu.Unlock()
			<-release
			json.NewEncoder(rw).Encode(activeClaims())
		})
		config := testConfig(as.URL)
		config.MaxConcurrentIntrospections = bound
		config.Timeout = "1h" // a queued request would wait for the endpoint, not time out
		m, next := newMiddleware(t, config)
		m.name = "auth@flood"
		logStart := len(logs.String())

		// bound requests with new tokens hold every call the endpoint may have, and one
		// more request waits on the first of them.
		codes := make(chan int, bound+1)
		for i := 0; i < bound; i++ {
			token := leak + "-slow-" + strconv.Itoa(i)
			go func() { codes <- serve(m, bearer(token)).Code }()
		}
		waitFor(t, "the endpoint to hold the calls", func() bool { return as.callCount() == bound })
		go func() { codes <- serve(m, bearer(leak+"-slow-0")).Code }()
		waitFor(t, "a request to wait on a call in flight", func() bool { return waiting(m) == 1 })

		// Answered while the endpoint still holds the calls: a request queued behind them
		// would fail the wait.
		for i := 0; i < 20; i++ {
			over := make(chan *httptest.ResponseRecorder, 1)
			token := leak + "-over-" + strconv.Itoa(i)
			go func() { over <- serve(m, bearer(token)) }()
			waitFor(t, "a request over the bound to be answered", func() bool { return len(over) == 1 })
			if rec := <-over; rec.Code != http.StatusServiceUnavailable || rec.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("over the bound: status %d, challenge %q; want 503 and none", rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
		if as.callCount() != bound {
			t.Errorf("endpoint calls = %d, want %d", as.callCount(), bound)
		}

		unblock()
		for i := 0; i <= bound; i++ {
			if code := <-codes; code != http.StatusOK {
				t.Errorf("a request within the bound got %d, want 200", code)
			}
		}
		if rec := serve(m, bearer(leak+"-after")); rec.Code != http.StatusOK {
			t.Errorf("after the calls ended: status %d, want 200", rec.Code)
		}
		if as.callCount() != bound+1 || next.count() != bound+2 {
			t.Errorf("endpoint calls = %d, backend requests = %d; want %d and %d", as.callCount(), next.count(), bound+1, bound+2)
		}
		mu.Lock()
		if len(connections) > bound {
			t.Errorf("connections the endpoint was called on = %d, want at most %d", len(connections), bound)
		}
		mu.Unlock()
		lines := logs.since(logStart, m.name)
		if len(lines) != 2 || !strings.Contains(lines[0], "maxConcurrentIntrospections") || !strings.Contains(lines[1], "(failed requests meanwhile: 20)") {
			t.Errorf("log lines:\n%s\nwant one that names maxConcurrentIntrospections and one when calls succeed again", strings.Join(lines, "\n"))
		}
	})
}
