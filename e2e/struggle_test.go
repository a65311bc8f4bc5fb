package e2e_test

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// TestStrugglingEndpoint, through a real Traefik: while the endpoint hangs, it holds only
// maxConcurrentIntrospections requests and another new token gets 503 without a call; while
// it is down, requests get 503; back on the same address, it admits requests again with no
// restart. The failures take a line or two of Traefik's log, not one per request, and no
// token or secret.
func TestStrugglingEndpoint(t *testing.T) {
	demo := harness.NewDemoAS()
	endpoint := &heldEndpoint{next: demo, release: make(chan struct{})}
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	server := endpoint.listen(t, addr)
	tr := startRoutes(t, map[string]string{harness.GoodHost: "endpoint: http://" + addr + "/oauth2-introspect\n" +
		"clientId: " + harness.DemoClientID + "\nclientSecret: " + harness.DemoClientSecret + "\n" +
		"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false\n" +
		// A queued request would wait for the endpoint, not time out: the calls count shows it.
		"maxConcurrentIntrospections: 2\ntimeout: 1m"})
	tokens := []string{"struggle-held-1", "struggle-held-2", "struggle-over", "struggle-outage"}

	endpoint.hold(true)
	held := make(chan harness.Answer, 2)
	for _, token := range tokens[:2] {
		token := token
		go func() {
			a, _ := tr.Send(harness.GoodHost, "/anything", token)
			held <- a
		}()
	}
	if err := harness.WaitUntil(30*time.Second, 10*time.Millisecond, func() (bool, error) { return endpoint.holding() >= 2, nil }); err != nil {
		t.Fatalf("the endpoint holds %d calls, want 2: %v", endpoint.holding(), err)
	}
	assertRefused(t, send(t, tr, harness.GoodHost, "/anything", tokens[2]), http.StatusServiceUnavailable, "")
	if got := demo.Calls("/oauth2-introspect") + endpoint.holding(); got != 2 {
		t.Errorf("the endpoint got %d calls while it held 2, want 2", got)
	}
	endpoint.hold(false)
	for i := 0; i < 2; i++ {
		assertReached(t, <-held, harness.DemoSubject)
	}

	server.Close()
	for i := 0; i < 10; i++ {
		assertRefused(t, send(t, tr, harness.GoodHost, "/anything", tokens[3]), http.StatusServiceUnavailable, "")
	}
	endpoint.listen(t, addr)
	assertReached(t, send(t, tr, harness.GoodHost, "/anything", tokens[3]), harness.DemoSubject)

	failed, recovered := 0, 0
	for _, line := range strings.Split(tr.Logs(), "\n") {
		if strings.Contains(line, "introspection failed") {
			failed++
		}
		if strings.Contains(line, "introspection works again") {
			recovered++
		}
	}
	// Two runs of failures (over the bound, then down), 11 requests: a line as each run
	// starts (a third only if the outage outlasted 10 s) and one as it ends.
	if failed < 2 || failed > 3 || recovered != 2 {
		t.Errorf("traefik log: %d failure lines, %d recovery lines; want 2 and 2", failed, recovered)
	}
	assertLogHoldsNo(t, tr, append(tokens, harness.DemoClientSecret)...)
}

// heldEndpoint passes calls to next, or holds them until released while hold is on. It
// can stop listening and start again on the same address.
type heldEndpoint struct {
	next    http.Handler
	mu      sync.Mutex
	on      bool
	held    int
	release chan struct{}
}

func (e *heldEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	release := e.release
	if e.on {
		e.held++
	}
	on := e.on
	e.mu.Unlock()
	if on {
		<-release
	}
	e.next.ServeHTTP(w, r)
}

func (e *heldEndpoint) hold(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.on && !on {
		close(e.release)
		e.release = make(chan struct{})
		e.held = 0
	}
	e.on = on
}

func (e *heldEndpoint) holding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held
}

// listen serves on addr until the test ends or the server is closed.
func (e *heldEndpoint) listen(t *testing.T, addr string) *http.Server {
	t.Helper()
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	server := &http.Server{Handler: e}
	go server.Serve(listener)
	t.Cleanup(func() {
		e.hold(false)
		server.Close()
	})
	return server
}
