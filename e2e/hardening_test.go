package e2e_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The requests below pass Traefik's own limits (Go's server takes a request line and
// headers of up to 1 MB) but cross the limits of the Go that Traefik v3.6 is built with:
// url.URL.Query returns nothing for a raw query of more than 10000 parameters
// (urlmaxqueryparams, counted as strings.Count(rawQuery, "&")+1), and Request.Cookies
// returns nothing for Cookie lines holding more than 3000 cookies (httpcookiemaxnum, the sum
// over the lines of strings.Count(line, ";")+1). A token hidden past those limits must not
// make a second token invisible, nor a request anonymous.
const (
	maxParams  = 10000
	maxCookies = 3000
)

// params returns n query parameters with neither a name nor a value the
// middleware reads, "x&x&...&x".
func params(n int) string {
	return strings.TrimSuffix(strings.Repeat("x&", n), "&")
}

// cookies returns n cookies the middleware does not read, "c=1; c=1; ...; c=1".
func cookies(n int) string {
	return strings.TrimSuffix(strings.Repeat("c=1; ", n), "; ")
}

// rawRequest is a request to Traefik written as given: target is the path and the
// raw query, not re-encoded, and each value of header is a header line of its own.
type rawRequest struct {
	method string // GET if empty
	host   string
	target string
	header http.Header
}

// sendRaw sends r to Traefik's web entry point, as harness.Traefik.Send does.
func sendRaw(t *testing.T, tr *harness.Traefik, r rawRequest) harness.Answer {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, tr.URL+r.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.RequestURI() != r.target {
		t.Fatalf("the client would send %.80q, not %.80q", req.URL.RequestURI(), r.target)
	}
	req.Host = r.host
	for name, values := range r.header {
		req.Header[name] = values
	}
	a, err := harness.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// bearer is an Authorization header with the bearer token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// demoClient is the demo client's options for the demo endpoint at path.
func demoClient(asURL, path string) string {
	return fmt.Sprintf("endpoint: %s%s\nclientId: %s\nclientSecret: %s\nforwardHeaders: {X-Auth-Subject: sub}\n",
		asURL, path, harness.DemoClientID, harness.DemoClientSecret)
}

// A requestCase is one request and what its user sees: refused with status and challenge
// (status != 0), or the backend's 404 with subject as X-Auth-Subject and no Authorization;
// and how many introspection calls the request made.
type requestCase struct {
	name      string
	req       rawRequest
	status    int
	challenge string
	subject   string
	calls     int
}

const (
	invalidRequest = `Bearer realm="traefik", error="invalid_request"`
	invalidToken   = `Bearer realm="traefik", error="invalid_token"`
)

// run sends the case's request and checks the answer and the calls it made.
func (rc requestCase) run(t *testing.T, tr *harness.Traefik, as *harness.AuthServer) harness.Answer {
	t.Helper()
	before := as.TotalCalls()
	a := sendRaw(t, tr, rc.req)
	calls := as.TotalCalls() - before
	if rc.status != 0 {
		if a.Seen != nil {
			t.Errorf("the backend was reached (with subject %q, after %d introspection calls); want %d from the middleware",
				a.Seen.Headers.Get("X-Auth-Subject"), calls, rc.status)
		}
		assertRefused(t, a, rc.status, rc.challenge)
	} else {
		assertReached(t, a, rc.subject)
	}
	if calls != rc.calls {
		t.Errorf("the endpoint answered %d introspection calls, want %d", calls, rc.calls)
	}
	return a
}

// TestHardeningQueryParameterLimit: with tokenQuery (and the Authorization header) a user
// who sends a valid bearer token and another token as access_token gets 400 invalid_request
// and the backend is not reached, with no introspection call, however many query
// parameters hide the second token; with optional, a token among more than 10000 query
// parameters gets 400 too rather than an anonymous pass.
func TestHardeningQueryParameterLimit(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	client := demoClient(asURL, "/oauth2-introspect")
	tr := startRoutes(t, map[string]string{
		"query.localhost":    client + "tokenQuery: access_token",
		"optional.localhost": client + "tokenQuery: access_token\noptional: true",
	})

	for _, row := range []requestCase{
		{
			name: "Authorization and access_token last of 10001 parameters",
			req: rawRequest{host: "query.localhost", header: bearer("hq-auth-1"),
				target: "/anything?" + params(maxParams) + "&access_token=hq-query-1"},
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "Authorization and access_token last of 10000 parameters",
			req: rawRequest{host: "query.localhost", header: bearer("hq-auth-2"),
				target: "/anything?" + params(maxParams-1) + "&access_token=hq-query-2"},
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "Authorization and access_token among few parameters",
			req: rawRequest{host: "query.localhost", header: bearer("hq-auth-3"),
				target: "/anything?a=1&access_token=hq-query-3&b=2"},
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "Authorization and a percent-encoded %61ccess_token",
			req: rawRequest{host: "query.localhost", header: bearer("hq-auth-4"),
				target: "/anything?a=1&%61ccess_token=hq-query-4&b=2"},
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "optional, access_token first of 10001 parameters",
			req: rawRequest{host: "optional.localhost",
				target: "/anything?access_token=hq-query-5&" + params(maxParams)},
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "optional, access_token first of 10000 parameters",
			req: rawRequest{host: "optional.localhost",
				target: "/anything?access_token=hq-query-6&" + params(maxParams-1)},
			subject: harness.DemoSubject, calls: 1,
		},
		{
			name:    "optional, no token among 10 parameters",
			req:     rawRequest{host: "optional.localhost", target: "/anything?" + params(10)},
			subject: "",
		},
	} {
		t.Run(row.name, func(t *testing.T) { row.run(t, tr, as) })
	}
}

// TestHardeningCookieLimit: with tokenCookie (and the Authorization header) a user who
// sends a valid bearer token and another token as the session cookie gets 400
// invalid_request and the backend is not reached, with no introspection call, however many
// cookies hide the second one, on one Cookie line or several.
func TestHardeningCookieLimit(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	tr := startRoutes(t, map[string]string{
		"cookie.localhost": demoClient(asURL, "/oauth2-introspect") + "tokenCookie: session",
	})

	request := func(auth string, lines ...string) rawRequest {
		header := bearer(auth)
		header["Cookie"] = lines
		return rawRequest{host: "cookie.localhost", target: "/anything", header: header}
	}
	third := maxCookies / 3
	for _, row := range []requestCase{
		{
			name:   "Authorization and session last of 3001 cookies on one line",
			req:    request("hc-auth-1", cookies(maxCookies)+"; session=hc-cookie-1"),
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "Authorization and session among 3001 cookies on three lines",
			req: request("hc-auth-2", cookies(third), "session=hc-cookie-2; "+cookies(third),
				cookies(maxCookies-2*third)),
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name:   "Authorization and session last of 3000 cookies on one line",
			req:    request("hc-auth-3", cookies(maxCookies-1)+"; session=hc-cookie-3"),
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
		{
			name: "Authorization and session among 3000 cookies on three lines",
			req: request("hc-auth-4", cookies(third), "session=hc-cookie-4; "+cookies(third),
				cookies(maxCookies-2*third-1)),
			status: http.StatusBadRequest, challenge: invalidRequest,
		},
	} {
		t.Run(row.name, func(t *testing.T) { row.run(t, tr, as) })
	}
}

// TestHardeningTokenRemovalKeepsTheRest: with forwardAuthorization false, a user whose
// token is in the query or a cookie reaches the backend as the token's subject, and the
// backend receives the rest of the query, and of the Cookie header, exactly as sent: the
// same order and escaping, bare names left bare, only the token gone.
func TestHardeningTokenRemovalKeepsTheRest(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	client := demoClient(asURL, "/oauth2-introspect") + "forwardAuthorization: false\n"
	tr := startRoutes(t, map[string]string{
		"query.localhost":  client + "tokenQuery: access_token",
		"cookie.localhost": client + "tokenCookie: session",
	})

	queries := []struct{ name, query, want string }{
		{"token in the middle", "b=%2F&access_token=hr-query-1&a=1&c", "b=%2F&a=1&c"},
		{"token first", "access_token=hr-query-2&b=%2F&a=1&c", "b=%2F&a=1&c"},
		{"token last", "b=%2F&a=1&c&access_token=hr-query-3", "b=%2F&a=1&c"},
		{"token alone", "access_token=hr-query-4", ""},
	}
	for _, q := range queries {
		t.Run("query, "+q.name, func(t *testing.T) {
			row := requestCase{req: rawRequest{host: "query.localhost", target: "/anything?" + q.query},
				subject: harness.DemoSubject, calls: 1}
			if a := row.run(t, tr, as); a.Seen == nil || a.Seen.RawQuery != q.want {
				t.Errorf("backend got %+v, want the raw query %q", a.Seen, q.want)
			}
		})
	}

	cookieLines := []struct{ name, cookie, want string }{
		{"token in the middle", "a=1; session=hr-cookie-1; b=2", "a=1; b=2"},
		{"token first", "session=hr-cookie-2; a=1; b=2", "a=1; b=2"},
		{"token last", "a=1; b=2; session=hr-cookie-3", "a=1; b=2"},
		// Go accepts a comma in a value as it reads cookies, and quotes it as it writes one.
		{"a comma in another value", "a=1; session=hr-cookie-4; b=x,y", "a=1; b=x,y"},
		{"a quoted value", `a=1; session=hr-cookie-5; q="x y"`, `a=1; q="x y"`},
	}
	for _, c := range cookieLines {
		t.Run("cookie, "+c.name, func(t *testing.T) {
			row := requestCase{req: rawRequest{host: "cookie.localhost", target: "/anything",
				header: http.Header{"Cookie": {c.cookie}}}, subject: harness.DemoSubject, calls: 1}
			if a := row.run(t, tr, as); !reflect.DeepEqual(a.Seen.Headers["Cookie"], []string{c.want}) {
				t.Errorf("backend got the Cookie lines %q, want [%q]", a.Seen.Headers["Cookie"], c.want)
			}
		})
	}
}

// TestHardeningPreflightWithCredentials: with skipPreflight, a CORS preflight without
// credentials reaches the backend with no introspection call, but an OPTIONS request that
// looks like a preflight and carries a bearer token is checked like any request: an
// inactive token gets 401 invalid_token, and an active one reaches the backend as its
// subject, without the Authorization header when forwardAuthorization is false.
func TestHardeningPreflightWithCredentials(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	tr := startRoutes(t, map[string]string{
		"good.localhost": demoClient(asURL, "/oauth2-introspect") + "skipPreflight: true\nforwardAuthorization: false",
		"bad.localhost":  demoClient(asURL, "/bad-oauth2-introspect") + "skipPreflight: true",
	})

	preflight := func(host, token string) rawRequest {
		header := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"DELETE"}}
		if token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		return rawRequest{method: http.MethodOptions, host: host, target: "/anything", header: header}
	}
	for _, row := range []requestCase{
		{name: "preflight without credentials, active endpoint", req: preflight("good.localhost", "")},
		{name: "preflight without credentials, inactive endpoint", req: preflight("bad.localhost", "")},
		{
			name:   "preflight with an inactive token",
			req:    preflight("bad.localhost", "hp-inactive-1"),
			status: http.StatusUnauthorized, challenge: invalidToken, calls: 1,
		},
		{
			name:    "preflight with an active token, forwardAuthorization false",
			req:     preflight("good.localhost", "hp-active-1"),
			subject: harness.DemoSubject, calls: 1,
		},
	} {
		t.Run(row.name, func(t *testing.T) {
			if a := row.run(t, tr, as); a.Seen != nil && a.Seen.Method != http.MethodOptions {
				t.Errorf("backend got method %s, want OPTIONS", a.Seen.Method)
			}
		})
	}
}
