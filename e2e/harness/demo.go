// The seed scenario that `make demo` shows and the end-to-end tests start from: the demo
// client's introspection server, the demo backend, and the two routes between them.

package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The demo authorization server's client credentials: what the middleware is configured with.
const (
	DemoClientID     = "tokengate-demo"
	DemoClientSecret = "demo-secret"
	DemoSubject      = "demo-user"
)

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

// GoodHost and BadHost are the seed scenario's two routes: the same request, checked at the
// endpoint that says "active" and at the one that says "inactive". Names under .localhost
// resolve to 127.0.0.1 in curl and browsers, so they can be tried by hand.
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
