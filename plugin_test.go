package introspection

import (
	"net/http"
	"strings"
	"testing"
	"time"
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
