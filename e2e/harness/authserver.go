// The introspection server of the demo, the end-to-end tests and the benchmark: an RFC 7662
// endpoint whose paths each give every token one answer, after client_secret_basic, and
// that counts the calls it answers.

package harness

import (
	"net/http"
	"sync"
	"time"
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
