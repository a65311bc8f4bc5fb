package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The demo authorization server's client credentials: what the middleware is configured with.
const (
	DemoClientID     = "tokengate-demo"
	DemoClientSecret = "demo-secret"
	DemoSubject      = "demo-user"
)

// DemoAS is the seed scenario's introspection server (RFC 7662): /oauth2-introspect says
// every token is active, /bad-oauth2-introspect says every token is inactive. It requires
// client_secret_basic with the demo credentials and counts the calls it answers per path.
type DemoAS struct {
	mu    sync.Mutex
	calls map[string]int
}

// NewDemoAS returns a demo authorization server with no calls counted.
func NewDemoAS() *DemoAS { return &DemoAS{calls: map[string]int{}} }

// Calls returns how many introspection calls path has answered.
func (a *DemoAS) Calls(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[path]
}

func (a *DemoAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var answer map[string]interface{}
	switch r.URL.Path {
	case "/oauth2-introspect":
		answer = map[string]interface{}{
			"active":     true,
			"sub":        DemoSubject,
			"client_id":  DemoClientID,
			"scope":      "read",
			"token_type": "Bearer",
			"exp":        time.Now().Add(time.Hour).Unix(),
		}
	case "/bad-oauth2-introspect":
		answer = map[string]interface{}{"active": false}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if id, secret, ok := r.BasicAuth(); !ok || id != DemoClientID || secret != DemoClientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	if r.Method != http.MethodPost || r.PostFormValue("token") == "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	a.mu.Lock()
	a.calls[r.URL.Path]++
	a.mu.Unlock()
	_ = json.NewEncoder(w).Encode(answer)
}

// Seen is what the demo backend received, as it echoes it back.
type Seen struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"rawQuery,omitempty"`
	Headers  http.Header `json:"headers"`
}

// BackendHeader marks answers that come from the demo backend rather than from Traefik.
const BackendHeader = "X-Demo-Backend"

// Backend is the seed scenario's backend: it has no pages, so every request that reaches
// it gets its 404, with what it received echoed as JSON.
func Backend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(BackendHeader, "reached")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(Seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Headers: r.Header})
	})
}

// DemoHosts are the seed scenario's two routes: the same request, checked at the endpoint
// that says "active" and at the one that says "inactive". Names under .localhost resolve
// to 127.0.0.1 in curl and browsers, so they can be tried by hand.
const (
	GoodHost = "good.localhost"
	BadHost  = "bad.localhost"
)

// DemoDynamic is the file-provider configuration of the seed scenario, for the demo
// authorization server at asURL and the demo backend at backendURL.
func DemoDynamic(asURL, backendURL string) string {
	client := fmt.Sprintf("clientId: %s\nclientSecret: %s\n", DemoClientID, DemoClientSecret)
	return Routes(backendURL, map[string]string{
		GoodHost: "endpoint: " + asURL + "/oauth2-introspect\n" + client +
			"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false",
		BadHost: "endpoint: " + asURL + "/bad-oauth2-introspect\n" + client,
	})
}

// Routes is a file-provider configuration with one router per host, each behind its own
// middleware named after the host's first label, all to the backend at backendURL. The
// options of each host's middleware are YAML lines as under plugin.<alias>.
func Routes(backendURL string, options map[string]string) string {
	hosts := make([]string, 0, len(options))
	for host := range options {
		hosts = append(hosts, host)
	}
	sort.Strings(hosts)
	var routers, middlewares strings.Builder
	for _, host := range hosts {
		name := strings.SplitN(host, ".", 2)[0]
		fmt.Fprintf(&routers, "    %s:\n      rule: Host(`%s`)\n      service: backend\n      middlewares: [%s-auth]\n", name, host, name)
		fmt.Fprintf(&middlewares, "    %s-auth:\n      plugin:\n        %s:\n", name, Alias)
		for _, line := range strings.Split(strings.TrimSpace(options[host]), "\n") {
			middlewares.WriteString("          " + line + "\n")
		}
	}
	return "http:\n  routers:\n" + routers.String() + "  middlewares:\n" + middlewares.String() +
		"  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: " + backendURL + "\n"
}
