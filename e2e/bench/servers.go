package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The client the middlewares and the ForwardAuth adapter authenticate as.
const (
	clientID     = "bench"
	clientSecret = "bench-secret"
)

// backendHeader marks answers that come from the backend rather than from Traefik;
// identityHeader says what the backend got of X-Auth-Subject, in any spelling.
const (
	backendHeader  = "X-Bench-Backend"
	identityHeader = "X-Bench-Identity"
)

// backend answers every request with a short 200: the cheapest thing to proxy to. It names
// every header it got that a backend could read as X-Auth-Subject, so the checks see both
// the plugin's value and any forged spelling that got through. It is not harness.Backend,
// whose 404 wrk would count as a failure and whose JSON echo would spend, on the load's
// CPUs, time that is not Traefik's.
func backend() http.Handler {
	body := []byte("ok\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(backendHeader, "reached")
		var identity []string
		for name, values := range r.Header {
			if strings.EqualFold(spellingFolder.Replace(name), "X-Auth-Subject") {
				identity = append(identity, name+"="+strings.Join(values, ","))
			}
		}
		if len(identity) > 0 {
			sort.Strings(identity)
			w.Header().Set(identityHeader, strings.Join(identity, " "))
		}
		_, _ = w.Write(body)
	})
}

// spellingFolder folds the '_' and '.' a backend may read as '-'.
var spellingFolder = strings.NewReplacer("_", "-", ".", "-")

// herdPause is how long /slow holds its answers, so that a herd of requests for one new
// token arrives while the first introspection is still in flight.
const herdPause = 200 * time.Millisecond

// newAuthServer is a fast RFC 7662 endpoint, its answers made once: /active says every
// token is active with scope "read", /claims the same for the claims row (a state of its
// own: a rule's keys are read from every answer of the routes sharing its cache), /slow
// the same after herdPause, /dpop the same bound to the DPoP key whose thumbprint is jkt
// (cnf.jkt, RFC 9449 §6.2), /flood the same as /active with 64 KiB of claims more;
// /inactive says no token is.
func newAuthServer(jkt string) *harness.AuthServer {
	claims := map[string]interface{}{
		"active": true, "sub": "bench-user", "client_id": clientID, "scope": "read",
		"exp": time.Now().Add(24 * time.Hour).Unix(),
	}
	active, _ := json.Marshal(claims)
	claims["cnf"] = map[string]string{"jkt": jkt}
	bound, _ := json.Marshal(claims)
	delete(claims, "cnf")
	claims["profile"] = strings.Repeat("p", 64<<10)
	large, _ := json.Marshal(claims)
	answer := func(body []byte) func() []byte { return func() []byte { return body } }
	return harness.NewAuthServer(clientID, clientSecret, map[string]harness.Introspection{
		"/active":   {Answer: answer(active)},
		"/claims":   {Answer: answer(active)},
		"/slow":     {Answer: answer(active), Pause: herdPause},
		"/dpop":     {Answer: answer(bound)},
		"/flood":    {Answer: answer(large)},
		"/inactive": {Answer: answer([]byte(`{"active":false}`))},
	})
}

// settledCalls is the count of calls once the calls still in flight when wrk stopped have
// been answered: the count has not moved for 100 ms (or 5 s passed).
func settledCalls(as *harness.AuthServer) int {
	last := -1
	_ = harness.WaitUntil(5*time.Second, 100*time.Millisecond, func() (bool, error) {
		calls := as.TotalCalls()
		settled := calls == last
		last = calls
		return settled, nil
	})
	return last
}

// forwardAuthAdapter is what users put behind Traefik's ForwardAuth today: it takes the
// bearer token from the Authorization header ForwardAuth passes on, introspects it at
// endpoint on every request (keep-alive connections, as a careful adapter would) and
// answers 200 to let the request through or 401 to refuse it.
func forwardAuthAdapter(endpoint string) http.Handler {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
		Timeout:   5 * time.Second,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"token": {token}}.Encode()))
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp, err := client.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		defer resp.Body.Close()
		var answer struct {
			Active bool `json:"active"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&answer) != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !answer.Active {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
