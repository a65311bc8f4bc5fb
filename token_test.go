// The test binary runs with the GODEBUG defaults of Traefik v3.6, whose go.mod says go 1.25:
// since Go 1.24.12/1.25.6 url.ParseQuery gives up past 10000 parameters, since
// 1.24.8/1.25.2 Request.Cookies past 3000 cookies, and our go 1.22 would turn both limits
// off. yaegi ignores the line; what the tests see must not depend on it.

//go:debug default=go1.25
package introspection

import (
	"net/http"
	"strings"
	"testing"
)

// manyParams is a query of n parameters that are not the token.
func manyParams(n int) string {
	return strings.TrimSuffix(strings.Repeat("p=1&", n), "&")
}

// manyCookies is a Cookie line of n cookies that are not the token.
func manyCookies(n int) string {
	return strings.TrimSuffix(strings.Repeat("c=1; ", n), "; ")
}

// TestTokenParserLimits: a token the standard parsers would not show the plugin (too many
// parameters or cookies, an escaped name, a ';' separator) is still found, or the request
// refused; never "no token" while the backend gets one.
func TestTokenParserLimits(t *testing.T) {
	query := func(raw string) func(*http.Request) {
		return func(r *http.Request) { r.URL.RawQuery = raw }
	}
	cookies := func(lines ...string) func(*http.Request) {
		return func(r *http.Request) { r.Header["Cookie"] = lines }
	}
	both := func(edits ...func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			for _, edit := range edits {
				edit(r)
			}
		}
	}
	inQuery := func(c *Config) { c.TokenQuery = "access_token" }
	inCookie := func(c *Config) { c.TokenCookie = "session" }
	optionalQuery := func(c *Config) { c.TokenQuery = "access_token"; c.Optional = true }
	optionalCookie := func(c *Config) { c.TokenCookie = "session"; c.Optional = true }
	cases := []struct {
		desc      string
		configure func(*Config)
		request   func(*http.Request)
		status    int
		calls     int
	}{
		{"a second token past 10000 parameters", inQuery,
			both(bearer("tok"), query(manyParams(10000)+"&access_token=other")), 400, 0},
		{"a token past 10000 parameters, optional", optionalQuery, query(manyParams(10000) + "&access_token=tok"), 400, 0},
		{"10000 parameters with the token: read", inQuery, query(manyParams(9999) + "&access_token=tok"), 200, 1},
		{"past 10000 parameters without the name: no token there", inQuery,
			both(bearer("tok"), query(manyParams(10001))), 200, 1},
		{"the name escaped", inQuery, both(bearer("tok"), query("%61ccess_token=other")), 400, 0},
		{"the name escaped, optional: the token is read", optionalQuery, query("a=1&%61ccess%5Ftoken=tok"), 200, 1},
		{"the name behind a ';'", optionalQuery, query("a=1;access_token=tok"), 400, 0},
		{"the value does not unescape", optionalQuery, query("access_token=tok%zz"), 400, 0},
		{"another value does not unescape: ignored", inQuery, query("q=100%&access_token=tok"), 200, 1},
		{"a second token past 3000 cookies", inCookie,
			both(bearer("tok"), cookies(manyCookies(3000)+"; session=other")), 400, 0},
		{"a token past 3000 cookies on two lines, optional", optionalCookie,
			cookies(manyCookies(1500), manyCookies(1500)+"; session=tok"), 400, 0},
		{"3000 cookies with the token: read", inCookie, cookies(manyCookies(2999) + "; session=tok"), 200, 1},
		{"past 3000 cookies without the name: no token there", inCookie,
			both(bearer("tok"), cookies(manyCookies(3001))), 200, 1},
		{"the cookie twice on two lines", inCookie, cookies("session=tok", "session=tok"), 400, 0},
		{"a quoted cookie", inCookie, cookies(`a=1; session="tok"`), 200, 1},
		{"a cookie value Go would drop", optionalCookie, cookies(`session=tok"x`), 400, 0},

		// What other backends read as the token, which Go's parsers do not.
		{"the name with an array suffix (PHP, Rails, Express)", inQuery, both(bearer("tok"), query("access_token[]=other")), 400, 0},
		{"the name with an escaped array suffix", inQuery, both(bearer("tok"), query("access_token%5Bx%5D=other")), 400, 0},
		{"the name in another letter case (ASP.NET)", inQuery, both(bearer("tok"), query("Access_Token=other")), 400, 0},
		{"the name with '.' for '_' (PHP)", inQuery, both(bearer("tok"), query("access.token=other")), 400, 0},
		{"the name after a space (PHP)", optionalQuery, query("+access_token=tok"), 400, 0},
		{"another name that starts with it", inQuery, both(bearer("tok"), query("access_token_hint=x")), 200, 1},
		{"10000 parameters counting ';', which Traefik forwards as '&'", inQuery,
			both(bearer("tok"), query("%25"+strings.Repeat(";", 10000))), 400, 0},
		{"the cookie after a space (Python)", inCookie, both(bearer("tok"), cookies("a=1 session=other")), 400, 0},
		{"the cookie after a comma (old Java)", inCookie, both(bearer("tok"), cookies("a=1, session=other")), 400, 0},
		{"the cookie in another letter case", inCookie, both(bearer("tok"), cookies("SESSION=other")), 400, 0},
		{"the cookie's name escaped (PHP)", optionalCookie, cookies("sess%69on=tok"), 400, 0},
		{"another cookie that ends with the name", inCookie, both(bearer("tok"), cookies("xsession=1; session_id=2")), 200, 1},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as, config := activeServer(t)
			tc.configure(config)
			m, next := newMiddleware(t, config)

			rec := serve(m, tc.request)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			wantChallenge := ""
			if tc.status == http.StatusBadRequest {
				wantChallenge = challengeRequest
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
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

// TestTokenRemoved: with forwardAuthorization false the backend gets the query and the
// Cookie lines without the token and otherwise as the client sent them: order, escapes and
// spacing kept, and RequestURI (which Traefik's proxy forwards) changed only in its query.
func TestTokenRemoved(t *testing.T) {
	cases := []struct {
		desc        string
		query       string
		cookies     []string
		wantQuery   string
		wantCookies string // the Cookie lines joined with " | "
	}{
		{desc: "query: order and escapes kept", query: "b=%2F&access_token=tok&a=1&c", wantQuery: "b=%2F&a=1&c"},
		{desc: "query: the token first", query: "access_token=tok&z=%7e", wantQuery: "z=%7e"},
		{desc: "query: the name escaped", query: "x=1&%61ccess_token=tok", wantQuery: "x=1"},
		{desc: "query: 10000 parameters", query: manyParams(9999) + "&access_token=tok", wantQuery: manyParams(9999)},
		{desc: "cookie in the middle", query: "x=%41", cookies: []string{"a=1; session=tok; b=2"}, wantQuery: "x=%41", wantCookies: "a=1; b=2"},
		{desc: "cookie first", cookies: []string{"session=tok; b=2"}, wantCookies: "b=2"},
		{desc: "cookie last, odd spacing kept", cookies: []string{"a=1;b=2 ;  session=tok"}, wantCookies: "a=1;b=2 "},
		{desc: "cookie alone on its line", cookies: []string{"a=1", "session=tok", "b=2"}, wantCookies: "a=1 | b=2"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			_, config := activeServer(t)
			config.TokenQuery, config.TokenCookie, config.ForwardAuthorization = "access_token", "session", false
			m, next := newMiddleware(t, config)

			// The path as a client may send it, which url.URL.RequestURI would escape.
			const path = "/any{thing}"
			rec := serve(m, func(r *http.Request) {
				r.URL.RawQuery = tc.query
				r.RequestURI = withQuery(path, tc.query) // as Go's server sets it
				if tc.cookies != nil {
					r.Header["Cookie"] = tc.cookies
				}
			})
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			upstream := next.lastRequest()
			if got := upstream.URL.RawQuery; got != tc.wantQuery {
				t.Errorf("upstream query %.80q, want %.80q", got, tc.wantQuery)
			}
			if got := strings.Join(upstream.Header["Cookie"], " | "); got != tc.wantCookies {
				t.Errorf("upstream Cookie %q, want %q", got, tc.wantCookies)
			}
			if want := withQuery(path, tc.wantQuery); upstream.RequestURI != want {
				t.Errorf("RequestURI = %.80q, want %.80q", upstream.RequestURI, want)
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
