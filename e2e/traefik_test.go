package e2e_test

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The seed scenario: the same request is refused with the endpoint that says "inactive"
// and reaches the backend with the one that says "active".
func TestSeedScenario(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	backend := serve(t, harness.Backend())
	tr := startTraefik(t, harness.DemoDynamic(asURL, backend))
	const token = "seed-token-1"
	waitRouted(t, tr, harness.GoodHost)

	assertRefused(t, send(t, tr, harness.BadHost, "/anything", token),
		http.StatusUnauthorized, `Bearer realm="traefik", error="invalid_token"`)
	assertReached(t, send(t, tr, harness.GoodHost, "/anything", token), harness.DemoSubject)
	assertRefused(t, send(t, tr, harness.GoodHost, "/anything", ""),
		http.StatusUnauthorized, `Bearer realm="traefik"`)

	if got := as.Calls("/bad-oauth2-introspect"); got != 1 {
		t.Errorf("bad endpoint answered %d calls, want 1", got)
	}
	if got := as.Calls("/oauth2-introspect"); got != 1 {
		t.Errorf("good endpoint answered %d calls, want 1", got)
	}
	assertLogHoldsNo(t, tr, token, harness.DemoClientSecret)
}

// TLS to the endpoint: the demo server behind HTTPS with a self-signed certificate is
// trusted with caFile, refused without it (503, the endpoint cannot be used), and reached
// without verification when sslVerify is false.
func TestEndpointTLS(t *testing.T) {
	as := harness.NewDemoAS()
	srv := httptest.NewTLSServer(as)
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	tls := map[string]string{ // host → the middleware's TLS options
		"ca.localhost":       "caFile: " + caFile,
		"noca.localhost":     "sslVerify: true",
		"insecure.localhost": "sslVerify: false",
	}
	routes := map[string]string{}
	for host, options := range tls {
		routes[host] = fmt.Sprintf("endpoint: %s/oauth2-introspect\nclientId: %s\nclientSecret: %s\n"+
			"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false\n%s",
			srv.URL, harness.DemoClientID, harness.DemoClientSecret, options)
	}
	tr := startRoutes(t, routes)

	const token = "tls-token-1"
	assertReached(t, send(t, tr, "ca.localhost", "/anything", token), harness.DemoSubject)
	assertRefused(t, send(t, tr, "noca.localhost", "/anything", token), http.StatusServiceUnavailable, "")
	assertReached(t, send(t, tr, "insecure.localhost", "/anything", token), harness.DemoSubject)
	// The refused handshake never reached the server; the other two did, once each.
	if got := as.Calls("/oauth2-introspect"); got != 2 {
		t.Errorf("endpoint answered %d calls, want 2", got)
	}
}

// Several routers share one middleware, and a file-provider reload that changes the routers
// keeps serving and keeps the cache warm: Traefik calls New again for every router on every
// reload, and the instances share one cache per endpoint.
func TestReloadKeepsCacheWarm(t *testing.T) {
	as := harness.NewDemoAS()
	asURL := serve(t, as)
	backend := serve(t, harness.Backend())
	config := func(routers ...string) string {
		var b strings.Builder
		b.WriteString("http:\n  routers:\n")
		for _, r := range routers {
			fmt.Fprintf(&b, "    %s:\n      rule: Host(`%s.localhost`)\n      service: backend\n      middlewares: [auth]\n", r, r)
		}
		fmt.Fprintf(&b, `  middlewares:
    auth:
      plugin:
        introspection:
          endpoint: %s/oauth2-introspect
          clientId: %s
          clientSecret: %s
          forwardHeaders:
            X-Auth-Subject: sub
          forwardAuthorization: false
          cacheTTL: 10m
  services:
    backend:
      loadBalancer:
        servers:
          - url: %s
`, asURL, harness.DemoClientID, harness.DemoClientSecret, backend)
		return b.String()
	}
	tr := startTraefik(t, config("one", "two"))
	waitRouted(t, tr, "one.localhost")
	waitRouted(t, tr, "two.localhost")

	const token = "reload-token-1"
	assertReached(t, send(t, tr, "one.localhost", "/", token), harness.DemoSubject)
	assertReached(t, send(t, tr, "two.localhost", "/", token), harness.DemoSubject)
	if got := as.Calls("/oauth2-introspect"); got != 1 {
		t.Fatalf("two routers sharing the middleware made %d calls, want 1", got)
	}

	// Requests keep flowing through router "one" while router "two" is replaced by "three".
	stop := make(chan struct{})
	var sent, failed int
	var lastErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := tr.Send("one.localhost", "/", token)
			sent++
			if err != nil || a.Seen == nil {
				failed++
				lastErr = fmt.Errorf("status %d, backend reached %v, error %v", a.Status, a.Seen != nil, err)
			}
		}
	}()
	if err := tr.SetDynamic(config("one", "three")); err != nil {
		t.Fatal(err)
	}
	waitRouted(t, tr, "three.localhost")
	close(stop)
	<-done

	if sent == 0 || failed > 0 {
		t.Errorf("during the reload %d of %d requests failed, last: %v", failed, sent, lastErr)
	}
	assertReached(t, send(t, tr, "three.localhost", "/", token), harness.DemoSubject)
	// Traefik built the middleware anew for router "one": the warm cache is not an old handler.
	if got := strings.Count(tr.Logs(), "middlewareName=auth@file routerName=one@file"); got < 2 {
		t.Errorf("traefik built the middleware for router one %d times, want a rebuild on reload", got)
	}
	if got := as.Calls("/oauth2-introspect"); got != 1 {
		t.Errorf("after the reload the endpoint has answered %d calls, want still 1", got)
	}
}

// `make demo` runs the demo program; with -check it makes the seed's requests and exits,
// failing if an answer is not the expected one.
func TestDemo(t *testing.T) {
	out := goRun(t, "./demo", "-check")
	for _, want := range []string{
		"401 Unauthorized from the middleware, WWW-Authenticate: Bearer realm=\"traefik\", error=\"invalid_token\"",
		"404 Not Found from the backend, which received X-Auth-Subject: \"demo-user\" and no Authorization header",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchSmoke runs the benchmark's checks without its timings (`go run ./bench -smoke`):
// every row of its table, the floors included, answers as it should through Traefik, a
// forged identity header never reaches the backend, and herds of concurrent requests for
// new tokens make one introspection call per token, and Redis answers a local miss.
func TestBenchSmoke(t *testing.T) {
	out := goRun(t, "./bench", "-smoke")
	if strings.Contains(string(out), "WRONG") {
		t.Errorf("a check of bench -smoke failed:\n%s", out)
	}
	for _, want := range []string{
		`ok     floor, cached: 3 requests reach the backend with identity "" and make 0 introspection calls`,
		`ok     this plugin, token cached: 3 requests reach the backend with identity "" and make 1 introspection calls`,
		`ok     floor, cached + 1 header: 3 requests reach the backend with identity "X-Auth-Subject=bench-user" and make 0 introspection calls`,
		`ok     this plugin, token cached, one forwardHeaders entry: 3 requests reach the backend with identity "X-Auth-Subject=bench-user" and make 1 introspection calls`,
		`ok     this plugin, local miss that the shared cache (Redis) answers: a token pushed out of the process's cache is answered from Redis, with no call`,
		`ok     floor, uncached: 3 requests reach the backend with identity "" and make 3 introspection calls`,
		`ok     this plugin, cacheTTL: 0s: 3 requests reach the backend with identity "" and make 3 introspection calls`,
		`ok     ForwardAuth + introspecting adapter: 3 requests reach the backend with identity "" and make 3 introspection calls`,
		"ok     a token whose answer carries 64 KiB of claims passes after 1 call",
		"ok     herd: 1 distinct new tokens, each in 1000 concurrent requests, make 1 introspection calls",
		"ok     herd: 100 distinct new tokens, each in 50 concurrent requests, make 100 introspection calls",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("bench -smoke output lacks %q:\n%s", want, out)
		}
	}
}
