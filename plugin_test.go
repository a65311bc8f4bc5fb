package introspection

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// behaviourRow is a row of the README's Behaviour table, named as the row's tests cell
// names it (TestBehaviour/<name>), with the situations that hold the plugin to it.
type behaviourRow struct {
	name  string
	cases []behaviourCase
}

// behaviourCase is one situation of a row. Its request is sent twice to a fresh middleware
// whose endpoint answers behaviourToken with answer; both get status and challenge, and calls counts
// the endpoint's calls: 0 none, 1 a call then the cache, 2 a call each time.
type behaviourCase struct {
	desc      string
	configure func(*Config)
	request   func(*http.Request)
	answer    interface{} // claims, a raw body or an http.HandlerFunc (see authServer)
	busy      bool        // another token's call holds the one call maxConcurrentIntrospections allows
	status    int
	challenge string
	calls     int
	logged    string // what the one line logged for both requests says; "" when nothing is logged
}

// behaviourToken is the token the cases send and the endpoint knows; it starts with leak,
// so that the log and the answers can be searched for it.
const behaviourToken = leak + "-behaviour"

// behaviourTable is the README's Behaviour table as TestBehaviour runs it, built when the
// test runs so that exp and nbf are relative to then.
func behaviourTable() []behaviourRow {
	now := time.Now()
	tok := behaviourToken
	header := func(values ...string) func(*http.Request) {
		return func(r *http.Request) { r.Header["Authorization"] = values }
	}
	query := func(raw string) func(*http.Request) {
		return func(r *http.Request) { r.URL.RawQuery = raw }
	}
	cookie := func(line string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Cookie", line) }
	}
	both := func(a, b func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) { a(r); b(r) }
	}
	allSources := func(c *Config) { c.TokenQuery = "access_token"; c.TokenCookie = "session" }
	long := func(n int) string { return leak + strings.Repeat("a", n-len(leak)) }
	claims := func(edit func(map[string]interface{})) map[string]interface{} {
		c := activeClaims()
		edit(c)
		return c
	}
	raw := func(body string) string { return body }
	status := func(code int) http.HandlerFunc {
		return func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(code) }
	}
	answerStatus := func(code int, body string) http.HandlerFunc {
		return func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(code)
			rw.Write([]byte(body))
		}
	}
	// To the endpoint itself: a redirect followed would be a third call, or more.
	redirect := func(code int) http.HandlerFunc {
		return func(rw http.ResponseWriter, req *http.Request) { http.Redirect(rw, req, "/moved", code) }
	}
	withAudiences := func(c *Config) { c.Audiences = []string{"api"} }
	claimsChallenge := `Bearer realm="traefik", error="insufficient_scope"`
	scopeChallenge := func(scope string) string {
		return `Bearer realm="traefik", error="insufficient_scope", scope="` + scope + `"`
	}

	return []behaviourRow{
		{name: "no-token", cases: []behaviourCase{
			{desc: "no token", status: 401, challenge: challenge},
			{desc: "another scheme is no bearer token", request: header("Basic dXNlcjpwYXNz"), status: 401, challenge: challenge},
			{desc: "a scheme that starts with Bearer", request: header("Bearerish " + tok), status: 401, challenge: challenge},
			{desc: "an empty Authorization header", request: header(""), status: 401, challenge: challenge},
			{desc: "query token off by default", request: query("access_token=" + tok), answer: activeClaims(), status: 401, challenge: challenge},
			{desc: "custom realm", configure: func(c *Config) { c.Realm = "api" }, status: 401, challenge: `Bearer realm="api"`},
		}},
		{name: "malformed", cases: []behaviourCase{
			{desc: "empty: Bearer alone", request: header("Bearer"), status: 400, challenge: challengeRequest},
			{desc: "empty: Bearer and spaces", request: header("Bearer   "), status: 400, challenge: challengeRequest},
			{desc: "empty: query parameter", configure: allSources, request: query("access_token="), status: 400, challenge: challengeRequest},
			{desc: "empty: cookie", configure: allSources, request: cookie("session="), status: 400, challenge: challengeRequest},
			{desc: "bad characters", request: bearer("abc$def"), status: 400, challenge: challengeRequest},
			{desc: "non-ASCII", request: header("Bearer " + tok + "ö"), status: 400, challenge: challengeRequest},
			{desc: "a space inside", request: header("Bearer " + tok + " x"), status: 400, challenge: challengeRequest},
			{desc: "a tab after the scheme", request: header("Bearer\ttok"), status: 400, challenge: challengeRequest},
			{desc: "a space then a tab", request: header("Bearer \ttok"), status: 400, challenge: challengeRequest},
			{desc: "padding first", request: bearer("=abc"), status: 400, challenge: challengeRequest},
			{desc: "padding inside", request: bearer(tok + "=x"), status: 400, challenge: challengeRequest},
			{desc: "8,193 bytes, over maxTokenLength", request: bearer(long(8193)), status: 400, challenge: challengeRequest},
			{desc: "8,193 bytes in a cookie", configure: allSources, request: cookie("session=" + long(8193)), status: 400, challenge: challengeRequest},
		}},
		{name: "more-than-one-place", cases: []behaviourCase{
			{desc: "header and query", configure: allSources, request: both(bearer(tok), query("access_token="+tok)), answer: activeClaims(),
				status: 400, challenge: challengeRequest},
			{desc: "cookie and header", configure: allSources, request: both(bearer(tok), cookie("session="+tok)), answer: activeClaims(),
				status: 400, challenge: challengeRequest},
			{desc: "query parameter twice", configure: allSources, request: query("access_token=" + tok + "&access_token=" + tok), answer: activeClaims(),
				status: 400, challenge: challengeRequest},
			{desc: "cookie twice", configure: allSources, request: cookie("session=" + tok + "; session=" + tok), answer: activeClaims(),
				status: 400, challenge: challengeRequest},
			{desc: "two Authorization headers", request: header("Bearer "+tok, "Bearer "+tok), answer: activeClaims(), status: 400, challenge: challengeRequest},
			{desc: "Bearer and a Basic header", request: header("Bearer "+tok, "Basic dXNlcjpwYXNz"), answer: activeClaims(), status: 400, challenge: challengeRequest},
		}},
		{name: "refused", cases: []behaviourCase{
			{desc: "inactive, whatever else the answer says", request: bearer(tok), answer: raw(`{"active":false,"sub":"alice"}`),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "status 400 unsupported_token_type", request: bearer(tok), answer: answerStatus(400, `{"error":"unsupported_token_type"}`),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "unknown to the endpoint", request: bearer("nobody-knows"), answer: activeClaims(), status: 401, challenge: challengeToken, calls: 1},
			{desc: "unknown, with b64token padding", request: bearer(tok + "=="), answer: activeClaims(), status: 401, challenge: challengeToken, calls: 1},
			{desc: "unknown, 8,192 bytes: maxTokenLength", request: bearer(long(8192)), status: 401, challenge: challengeToken, calls: 1},
			// Past its exp an answer is not kept (RFC 7662 §4): each request calls.
			{desc: "expired beyond clockSkew", request: bearer(tok), answer: withClaim("exp", now.Add(-time.Minute).Unix()),
				status: 401, challenge: challengeToken, calls: 2},
			{desc: "expired, exp a numeric string", request: bearer(tok), answer: withClaim("exp", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)),
				status: 401, challenge: challengeToken, calls: 2},
			{desc: "zero clockSkew", configure: func(c *Config) { c.ClockSkew = "0s" }, request: bearer(tok),
				answer: withClaim("exp", now.Add(-10*time.Second).Unix()), status: 401, challenge: challengeToken, calls: 2},
			{desc: "not valid before beyond clockSkew", request: bearer(tok), answer: withClaim("nbf", now.Add(time.Minute).Unix()),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "audience mismatch", configure: func(c *Config) { c.Audiences = []string{"billing"} }, request: bearer(tok), answer: activeClaims(),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "audience is a prefix only", configure: func(c *Config) { c.Audiences = []string{"ap"} }, request: bearer(tok),
				answer: withClaim("aud", "api"), status: 401, challenge: challengeToken, calls: 1},
			{desc: "an audience that only starts with the one wanted", configure: withAudiences, request: bearer(tok),
				answer: withClaim("aud", []string{"web", "apis"}), status: 401, challenge: challengeToken, calls: 1},
			{desc: "no audience", configure: withAudiences, request: bearer(tok), answer: withClaim("aud", nil),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "issuer mismatch", configure: func(c *Config) { c.Issuers = []string{"https://issuer.example"} }, request: bearer(tok),
				answer: withClaim("iss", "https://evil.example"), status: 401, challenge: challengeToken, calls: 1},
			{desc: "refresh token by token_type", request: bearer(tok), answer: withClaim("token_type", "refresh_token"),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "refresh token by Hydra's token_use", request: bearer(tok), answer: withClaim("token_use", "refresh_token"),
				status: 401, challenge: challengeToken, calls: 1},
			{desc: "refresh token by Keycloak's typ", request: bearer(tok), answer: withClaim("typ", "Refresh"), status: 401, challenge: challengeToken, calls: 1},
			{desc: "offline token by Keycloak's typ", request: bearer(tok), answer: withClaim("typ", "Offline"), status: 401, challenge: challengeToken, calls: 1},
		}},
		{name: "scope-missing", cases: []behaviourCase{
			{desc: "required scope missing", configure: func(c *Config) { c.RequiredScopes = []string{"read", "admin"} }, request: bearer(tok),
				answer: activeClaims(), status: 403, challenge: scopeChallenge("read admin"), calls: 1},
			{desc: "scopes are separated by SP only", configure: func(c *Config) { c.RequiredScopes = []string{"admin"} }, request: bearer(tok),
				answer: withClaim("scope", "profile\u00a0admin read\tadmin"), status: 403, challenge: scopeChallenge("admin"), calls: 1},
			{desc: "scope is a prefix only", configure: func(c *Config) { c.RequiredScopes = []string{"rea"} }, request: bearer(tok),
				answer: activeClaims(), status: 403, challenge: scopeChallenge("rea"), calls: 1},
			{desc: "no scope at all", configure: func(c *Config) { c.RequiredScopes = []string{"read"} }, request: bearer(tok),
				answer: withClaim("scope", nil), status: 403, challenge: scopeChallenge("read"), calls: 1},
		}},
		{name: "claims-not-met", cases: []behaviourCase{
			{desc: "a claim with another value", configure: func(c *Config) { c.Claims = "Equals(`client_id`, `billing`)" }, request: bearer(tok),
				answer: activeClaims(), status: 403, challenge: claimsChallenge, calls: 1},
			{desc: "a missing claim", configure: func(c *Config) { c.Claims = "Equals(`realm_access.roles`, `admin`)" }, request: bearer(tok),
				answer: activeClaims(), status: 403, challenge: claimsChallenge, calls: 1},
			{desc: "a list claim without the item", configure: func(c *Config) { c.Claims = "Contains(`groups`, `admin`)" }, request: bearer(tok),
				answer: withClaim("groups", []string{"admins", "staff"}), status: 403, challenge: claimsChallenge, calls: 1},
			{desc: "one clause of two", configure: func(c *Config) { c.Claims = "Equals(`sub`, `alice`) && Prefix(`client_id`, `svc-`)" }, request: bearer(tok),
				answer: activeClaims(), status: 403, challenge: claimsChallenge, calls: 1},
		}},
		{name: "endpoint-failure", cases: []behaviourCase{
			{desc: "connection error: closed before an answer", request: bearer(tok), answer: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
				if conn, _, err := rw.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
			}), status: 503, calls: 2, logged: "EOF"},
			{desc: "timeout", configure: func(c *Config) { c.Timeout = "100ms" }, request: bearer(tok),
				answer: http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
					<-req.Context().Done() // the server sees the client leave, and ends the call's context
				}), status: 503, calls: 2, logged: "context deadline exceeded"},
			{desc: "status 500", request: bearer(tok), answer: status(500), status: 503, calls: 2, logged: "answered status 500"},
			{desc: "status 502", request: bearer(tok), answer: status(502), status: 503, calls: 2, logged: "answered status 502"},
			{desc: "status 429", request: bearer(tok), answer: status(429), status: 503, calls: 2, logged: "answered status 429"},
			{desc: "status 400", request: bearer(tok), answer: status(400), status: 503, calls: 2, logged: "answered status 400"},
			{desc: "status 400 invalid_request", request: bearer(tok), answer: answerStatus(400, `{"error":"invalid_request"}`), status: 503, calls: 2, logged: "answered status 400"},
			{desc: "status 500 unsupported_token_type", request: bearer(tok), answer: answerStatus(500, `{"error":"unsupported_token_type"}`), status: 503, calls: 2, logged: "answered status 500"},
			{desc: "status 401: our credentials", request: bearer(tok), answer: status(401), status: 503, calls: 2, logged: "refused our client credentials (401)"},
			{desc: "redirect 301", request: bearer(tok), answer: redirect(301), status: 503, calls: 2, logged: "answered status 301"},
			{desc: "redirect 302", request: bearer(tok), answer: redirect(302), status: 503, calls: 2, logged: "answered status 302"},
			{desc: "redirect 303", request: bearer(tok), answer: redirect(303), status: 503, calls: 2, logged: "answered status 303"},
			{desc: "redirect 307", request: bearer(tok), answer: redirect(307), status: 503, calls: 2, logged: "answered status 307"},
			{desc: "redirect 308", request: bearer(tok), answer: redirect(308), status: 503, calls: 2, logged: "answered status 308"},
			{desc: "over 1 MiB", request: bearer(tok), answer: raw(`{"active":true,"pad":"` + strings.Repeat("x", maxResponseBytes) + `"}`), status: 503, calls: 2, logged: "is over 1048576 bytes"},
			{desc: "HTML", request: bearer(tok), answer: raw(`<html><body>Sign in</body></html>`), status: 503, calls: 2, logged: "not a JSON object"},
			{desc: "a JSON array", request: bearer(tok), answer: raw(`[{"active":true}]`), status: 503, calls: 2, logged: "not a JSON object"},
			{desc: "JSON null", request: bearer(tok), answer: raw(`null`), status: 503, calls: 2, logged: "not a JSON object"},
			{desc: "data after the object", request: bearer(tok), answer: raw(`{"active":true}{"active":false}`), status: 503, calls: 2, logged: "data after its JSON object"},
			{desc: "active missing", request: bearer(tok), answer: raw(`{}`), status: 503, calls: 2, logged: "no boolean \"active\""},
			{desc: "active a string", request: bearer(tok), answer: raw(`{"active":"true"}`), status: 503, calls: 2, logged: "no boolean \"active\""},
			{desc: "active a number", request: bearer(tok), answer: raw(`{"active":1}`), status: 503, calls: 2, logged: "no boolean \"active\""},
			{desc: "active null", request: bearer(tok), answer: raw(`{"active":null}`), status: 503, calls: 2, logged: "no boolean \"active\""},
			{desc: "exp not a number", request: bearer(tok), answer: raw(`{"active":true,"exp":"soon"}`), status: 503, calls: 2, logged: "non-numeric \"exp\""},
			{desc: "exp an object", request: bearer(tok), answer: raw(`{"active":true,"exp":{}}`), status: 503, calls: 2, logged: "non-numeric \"exp\""},
		}},
		{name: "calls-bounded", cases: []behaviourCase{
			{desc: "a new token while the one call allowed is in flight", request: bearer(tok), answer: activeClaims(), busy: true, status: 503,
				logged: "maxConcurrentIntrospections calls are already in flight"},
		}},
		{name: "admitted", cases: []behaviourCase{
			{desc: "active", request: bearer(tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "a claims rule that holds", configure: func(c *Config) {
				c.Claims = "Equals(`sub`, `alice`) && (OneOf(`client_id`, `app`, `cli`) || Equals(`realm_access.roles`, `admin`))"
			}, request: bearer(tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "bearer", request: header("bearer " + tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "BEARER", request: header("BEARER " + tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "bEaReR", request: header("bEaReR " + tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "extra spaces after the scheme", request: header("Bearer     " + tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "expired within clockSkew", request: bearer(tok), answer: withClaim("exp", now.Add(-10*time.Second).Unix()), status: 200, calls: 2},
			{desc: "no exp", request: bearer(tok), answer: withClaim("exp", nil), status: 200, calls: 1},
			{desc: "not valid before within clockSkew", request: bearer(tok), answer: withClaim("nbf", now.Add(10*time.Second).Unix()), status: 200, calls: 1},
			{desc: "exp and nbf as floats", request: bearer(tok), answer: claims(func(c map[string]interface{}) {
				c["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5
				c["nbf"] = float64(now.Add(-time.Hour).Unix()) + 0.5
			}), status: 200, calls: 1},
			{desc: "exp and nbf as numeric strings", request: bearer(tok), answer: claims(func(c map[string]interface{}) {
				c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
				c["nbf"] = strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
			}), status: 200, calls: 1},
			{desc: "audience in the list", configure: withAudiences, request: bearer(tok), answer: activeClaims(), status: 200, calls: 1},
			{desc: "audience a string", configure: withAudiences, request: bearer(tok), answer: withClaim("aud", "api"), status: 200, calls: 1},
			{desc: "issuer matches", configure: func(c *Config) { c.Issuers = []string{"https://issuer.example"} }, request: bearer(tok),
				answer: activeClaims(), status: 200, calls: 1},
			{desc: "access token by Keycloak's typ", request: bearer(tok), answer: withClaim("typ", "Bearer"), status: 200, calls: 1},
			{desc: "access token by Hydra's token_use", request: bearer(tok), answer: withClaim("token_use", "access_token"), status: 200, calls: 1},
			{desc: "required scopes present", configure: func(c *Config) { c.RequiredScopes = []string{"read", "write"} }, request: bearer(tok),
				answer: activeClaims(), status: 200, calls: 1},
			{desc: "scope with extra spaces", configure: func(c *Config) { c.RequiredScopes = []string{"read", "write"} }, request: bearer(tok),
				answer: withClaim("scope", "  read    write  "), status: 200, calls: 1},
			{desc: "scope as a list", configure: func(c *Config) { c.RequiredScopes = []string{"write"} }, request: bearer(tok),
				answer: withClaim("scope", []string{"read", "write"}), status: 200, calls: 1},
		}},
	}
}

// TestBehaviour is the README's Behaviour table: a group per row, a case per situation,
// each with the status, the challenge, whether the backend was reached, what it got of the
// Authorization header and how many calls the endpoint got. TestBehaviourTable holds the
// README to these rows.
func TestBehaviour(t *testing.T) {
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	for _, row := range behaviourTable() {
		row := row // yaegi v0.16.1 shares loop variables between iterations
		t.Run(row.name, func(t *testing.T) {
			for _, tc := range row.cases {
				tc := tc
				t.Run(tc.desc, func(t *testing.T) { testBehaviourCase(t, tc, &logs) })
			}
		})
	}
}

// testBehaviourCase sends tc's request twice and checks what the client, the backend, the
// endpoint and the log saw.
func testBehaviourCase(t *testing.T, tc behaviourCase, logs *lockedBuffer) {
	as := newAuthServer(t)
	if tc.answer != nil {
		as.answer(behaviourToken, tc.answer)
	}
	config := testConfig(as.URL)
	if tc.configure != nil {
		tc.configure(config)
	}
	if tc.busy {
		config.MaxConcurrentIntrospections = 1
	}
	m, next := newMiddleware(t, config)
	held := 0 // the endpoint's calls that are not the case's
	if tc.busy {
		release := make(chan struct{})
		as.answer("busy", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			<-release
			json.NewEncoder(rw).Encode(activeClaims())
		}))
		done := make(chan int, 1)
		go func() { done <- serve(m, bearer("busy")).Code }()
		// Before the endpoint's own cleanup, which waits for its calls to end.
		t.Cleanup(func() { close(release); <-done })
		waitFor(t, "the call that takes the bound", func() bool { return as.callCount() == 1 })
		held = 1
	}

	logStart := len(logs.String())
	for i := 1; i <= 2; i++ {
		var authorization, sent string // what the client sent, before the middleware saw it
		calls := as.callCount()
		rec := serve(m, func(r *http.Request) {
			if tc.request != nil {
				tc.request(r)
			}
			authorization = strings.Join(r.Header["Authorization"], ", ")
			sent = authorization + " " + r.URL.RawQuery + " " + r.Header.Get("Cookie")
		})

		if rec.Code != tc.status || rec.Header().Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("request %d: status %d, challenge %q; want %d, %q", i, rec.Code, rec.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if _, form := as.lastCall(); as.callCount() > calls && (form.Get("token") == "" || !strings.Contains(sent, form.Get("token"))) {
			t.Errorf("request %d: the endpoint was asked about a token the client did not send", i)
		}
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("request %d: the answer's body echoes the token: %q", i, rec.Body.String())
		}
		if tc.status == http.StatusOK {
			if got := strings.Join(next.lastRequest().Header["Authorization"], ", "); got != authorization {
				t.Errorf("request %d: upstream Authorization %q, want it as sent, %q", i, got, authorization)
			}
		}
	}
	if got := as.callCount() - held; got != tc.calls {
		t.Errorf("endpoint calls = %d, want %d", got, tc.calls)
	}
	wantNext := 0
	if tc.status == http.StatusOK {
		wantNext = 2
	}
	if next.count() != wantNext {
		t.Errorf("backend requests = %d, want %d", next.count(), wantNext)
	}
	lines := logs.since(logStart, m.name)
	if tc.logged == "" && len(lines) > 0 || tc.logged != "" && (len(lines) != 1 || !strings.Contains(lines[0], tc.logged)) {
		t.Errorf("log lines %q, want one that says %q (none when that is empty)", lines, tc.logged)
	}
	for _, secret := range []string{leak, "s3cret-value", basicCredentials("traefik", "s3cret-value")} {
		if logged := logs.String()[logStart:]; strings.Contains(logged, secret) {
			t.Errorf("the log shows %q: %q", secret, logged)
		}
	}
}

// TestBehaviourTable holds the README's Behaviour table to the tests, as TestComparisonRows
// does the comparison table: each row names one home test, no two rows the same, and that
// test exists (a row of behaviourTable for TestBehaviour/<row>, else a Test function of
// this package); TestBehaviour has no row the README does not list. A row TestBehaviour
// holds must say what its cases see: their status, challenge and endpoint calls.
func TestBehaviourTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Behaviour\n")
	if start < 0 {
		t.Fatal(`README.md has no "Behaviour" section`)
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var sources strings.Builder
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources.Write(data)
	}
	rows := map[string]behaviourRow{}
	for _, row := range behaviourTable() {
		rows[row.name] = row
	}

	homes := map[string]string{} // home test: the situation that names it
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if cells[0] == "situation" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != 5 {
			t.Errorf("row %q has %d cells, want 5: situation, status, WWW-Authenticate, endpoint called, tests", cells[0], len(cells))
			continue
		}
		home := cells[4]
		if other, taken := homes[home]; taken {
			t.Errorf("rows %q and %q both name %s: each row has its own home test", other, cells[0], home)
		}
		homes[home] = cells[0]
		if name := strings.TrimPrefix(home, "TestBehaviour/"); name != home {
			row, ok := rows[name]
			if !ok {
				t.Errorf("row %q names %s, which is no row of behaviourTable", cells[0], home)
				continue
			}
			checkBehaviourRow(t, cells, row)
			continue
		}
		if !regexp.MustCompile(`^Test\w+$`).MatchString(home) || !strings.Contains(sources.String(), "func "+home+"(t *testing.T)") {
			t.Errorf("row %q names %q, which is no test here", cells[0], home)
		}
	}
	for name := range rows {
		if _, listed := homes["TestBehaviour/"+name]; !listed {
			t.Errorf("TestBehaviour/%s is a row the README's Behaviour table does not list", name)
		}
	}
	if len(homes) < 10 {
		t.Errorf("found %d rows in the Behaviour table, want the whole table", len(homes))
	}
}

// checkBehaviourRow checks that the README's cells of a row say what its cases see. The
// challenge cell writes the realm as R and the required scopes as a placeholder.
func checkBehaviourRow(t *testing.T, cells []string, row behaviourRow) {
	t.Helper()
	status := http.StatusOK
	if !strings.HasPrefix(cells[1], "the next handler runs") {
		code, err := strconv.Atoi(cells[1])
		if err != nil {
			t.Errorf("row %q: status %q is neither a code nor the next handler", cells[0], cells[1])
		}
		status = code
	}
	challenge := strings.Trim(cells[2], "`")
	if challenge == "none" || challenge == "—" {
		challenge = ""
	}
	calls := map[string][]int{"no": {0}, "yes, or cache": {1, 2}, "yes; nothing cached": {2}}[cells[3]]
	if calls == nil {
		t.Errorf("row %q: endpoint called %q is not no, yes, or cache, or yes; nothing cached", cells[0], cells[3])
	}
	realm := regexp.MustCompile(`realm="[^"]*"`)
	scope := regexp.MustCompile(`scope="[^"]*"`)
	for _, tc := range row.cases {
		got := realm.ReplaceAllString(tc.challenge, `realm="R"`)
		got = scope.ReplaceAllString(got, `scope="<required, space-separated>"`)
		if tc.status != status || got != challenge || !containsInt(calls, tc.calls) {
			t.Errorf("row %q says %s, %q, endpoint called %q; its case %q sees %d, %q and %d calls",
				cells[0], cells[1], challenge, cells[3], tc.desc, tc.status, got, tc.calls)
		}
	}
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
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
