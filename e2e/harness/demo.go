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

// AuthServer is an RFC 7662 introspection endpoint whose every path gives every token the
// same answer. It requires client_secret_basic with its client's credentials and counts the
// calls it answers, per path.
type AuthServer struct {
	clientID, clientSecret string
	paths                  map[string]Introspection

	mu    sync.Mutex
	calls map[string]int
}

// Introspection is how a path of an AuthServer answers: with Answer's JSON, after Pause.
type Introspection struct {
	Answer func() []byte // called for each call, so that an exp can stay in the future
	Pause  time.Duration // how long each call is held, so that calls overlap
}

// NewAuthServer returns an authorization server for the client with these credentials,
// answering at paths, with no calls counted.
func NewAuthServer(clientID, clientSecret string, paths map[string]Introspection) *AuthServer {
	return &AuthServer{clientID: clientID, clientSecret: clientSecret, paths: paths, calls: map[string]int{}}
}

// NewDemoAS returns the seed scenario's introspection server: /oauth2-introspect says every
// token is active, /bad-oauth2-introspect says every token is inactive; the client is the
// demo client.
func NewDemoAS() *AuthServer {
	return NewAuthServer(DemoClientID, DemoClientSecret, map[string]Introspection{
		"/oauth2-introspect": {Answer: func() []byte {
			answer, _ := json.Marshal(map[string]interface{}{
				"active":     true,
				"sub":        DemoSubject,
				"client_id":  DemoClientID,
				"scope":      "read",
				"token_type": "Bearer",
				"exp":        time.Now().Add(time.Hour).Unix(),
			})
			return answer
		}},
		"/bad-oauth2-introspect": {Answer: func() []byte { return []byte(`{"active":false}`) }},
	})
}

// Calls returns how many introspection calls path has answered.
func (a *AuthServer) Calls(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[path]
}

// TotalCalls returns how many introspection calls all paths have answered.
func (a *AuthServer) TotalCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	total := 0
	for _, n := range a.calls {
		total += n
	}
	return total
}

func (a *AuthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := a.paths[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if id, secret, ok := r.BasicAuth(); !ok || id != a.clientID || secret != a.clientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	if r.Method != http.MethodPost || r.PostFormValue("token") == "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	time.Sleep(path.Pause)
	a.mu.Lock()
	a.calls[r.URL.Path]++
	a.mu.Unlock()
	_, _ = w.Write(path.Answer())
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

// Route is one router of a file-provider configuration: the requests for Host, through
// Middleware (its configuration, YAML as under http.middlewares.<name>; "" for none).
type Route struct {
	Host       string
	Middleware string
}

// Dynamic is a file-provider configuration with one router per route, in order, each
// behind its own middleware named after the host's first label, all to the backend at
// backendURL.
func Dynamic(backendURL string, routes []Route) string {
	var routers, middlewares strings.Builder
	for _, r := range routes {
		name := strings.SplitN(r.Host, ".", 2)[0]
		fmt.Fprintf(&routers, "    %s:\n      rule: Host(`%s`)\n      service: backend\n", name, r.Host)
		if r.Middleware == "" {
			continue
		}
		fmt.Fprintf(&routers, "      middlewares: [%s-auth]\n", name)
		fmt.Fprintf(&middlewares, "    %s-auth:\n%s", name, indent(r.Middleware, "      "))
	}
	return "http:\n  routers:\n" + routers.String() + "  middlewares:\n" + middlewares.String() +
		"  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: " + backendURL + "\n"
}

// PluginMiddleware is the configuration of a middleware of the local plugin alias, whose
// options are YAML lines as under plugin.<alias>.
func PluginMiddleware(alias, options string) string {
	return "plugin:\n  " + alias + ":\n" + indent(options, "    ")
}

// Routes is Dynamic with a route per host, in the order of the hosts' names, each through
// this plugin's middleware with the host's options.
func Routes(backendURL string, options map[string]string) string {
	hosts := make([]string, 0, len(options))
	for host := range options {
		hosts = append(hosts, host)
	}
	sort.Strings(hosts)
	routes := make([]Route, len(hosts))
	for i, host := range hosts {
		routes[i] = Route{Host: host, Middleware: PluginMiddleware(Alias, options[host])}
	}
	return Dynamic(backendURL, routes)
}

// indent puts by before each line of text.
func indent(text, by string) string {
	return by + strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n"+by) + "\n"
}
