// The DPoP path as Traefik runs it, interpreted by yaegi and called from compiled code: a
// cached DPoP-bound token with a fresh ES256 proof per request (its compiled counterpart is
// BenchmarkCacheHitDPoP in the plugin's package), beside its floor (bench/floors/dpop).
// The fixtures are interp_test.go's; the proofs are signed with go-jose, all made before
// the timer starts, each with its own jti.
package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

const (
	dpopToken = "dpop-bound-token" // the token of the DPoP benchmarks, bound to their key
	dpopURL   = "http://api.example.com/"
)

// newDPoPClient is the benchmarks' DPoP client: an ES256 key, its proofs signed by go-jose.
func newDPoPClient(b *testing.B) *harness.DPoPKey {
	b.Helper()
	key, err := harness.NewDPoPKey(jose.ES256)
	if err != nil {
		b.Fatal(err)
	}
	return key
}

// proofs are n proofs by key for a GET of dpopURL with dpopToken, issued now, each with its
// own jti.
func proofs(b *testing.B, key *harness.DPoPKey, n int) []string {
	b.Helper()
	made := make([]string, n)
	for i := range made {
		proof, err := key.Proof(http.MethodGet, dpopURL, dpopToken)
		if err != nil {
			b.Fatal(err)
		}
		made[i] = proof
	}
	return made
}

// dpopFixture is an interpreted middleware, the plugin or the DPoP floor, and a request
// with dpopToken under the DPoP scheme whose proof each run replaces.
type dpopFixture struct {
	handler http.Handler
	next    *interpNext
	calls   func() int // the endpoint's calls so far
	req     *http.Request
	rw      *interpWriter
}

// dpopSetup builds p's middleware from raw and sends one request with a first proof,
// checking that it got through with calls endpoint calls.
func dpopSetup(b *testing.B, p *loader.Plugin, raw map[string]interface{}, c *harness.DPoPKey, endpointCalls func() int, calls int) *dpopFixture {
	b.Helper()
	next := &interpNext{}
	handler, err := p.New(raw, next)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	req := httptest.NewRequest(http.MethodGet, dpopURL, nil)
	req.Header.Set("Authorization", "DPoP "+dpopToken)
	req.Header.Set("DPoP", proofs(b, c, 1)[0])
	rw := &interpWriter{header: http.Header{}}
	handler.ServeHTTP(rw, req)
	if next.calls != 1 || endpointCalls() != calls {
		b.Fatalf("first request: next reached %d times, endpoint called %d times; want 1 and %d", next.calls, endpointCalls(), calls)
	}
	return &dpopFixture{handler: handler, next: next, calls: endpointCalls, req: req, rw: rw}
}

// run times b.N requests, each with one of b.N new proofs by c, and checks after the loop
// that each got through and the endpoint was called calls times in all.
func (f *dpopFixture) run(b *testing.B, c *harness.DPoPKey, calls int) {
	fresh := proofs(b, c, b.N)
	// One header value, changed in place: a new slice per request would count against the middleware.
	header := []string{""}
	f.req.Header["Dpop"] = header
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		header[0] = fresh[i]
		f.handler.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	if f.next.calls != 1+b.N || f.calls() != calls {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times in all; want %d and %d",
			b.N, f.next.calls-1, f.calls(), b.N, calls)
	}
}

// BenchmarkInterpretedCacheHitDPoP is one request with a cached DPoP-bound token and a
// fresh proof through the plugin as yaegi interprets it, default configuration but for the
// cache's and the proofs' lifetimes; BenchmarkInterpretedFloorDPoP is the least a check of
// the proof's signature can do (bench/floors/dpop).
func BenchmarkInterpretedCacheHitDPoP(b *testing.B) {
	c := newDPoPClient(b)
	answer, err := json.Marshal(map[string]interface{}{"active": true, "sub": "alice", "cnf": map[string]string{"jkt": c.Thumbprint()}})
	if err != nil {
		b.Fatal(err)
	}
	as := harness.NewAuthServer(loader.ClientID, loader.ClientSecret,
		map[string]harness.Introspection{"/": {Answer: func() []byte { return answer }}})
	endpoint := httptest.NewServer(as)
	b.Cleanup(endpoint.Close)

	p := loader.Load(context.Background(), b, os.Environ())
	// Proofs made before the timer are at most a run old: 10m is longer than any run.
	raw := loader.DecodePluginLabels(b, loader.Keys(endpoint.URL+"/", cached(map[string]string{"dpopProofMaxAge": "10m"})))
	dpopSetup(b, p, raw, c, as.TotalCalls, 1).run(b, c, 1)
}

func BenchmarkInterpretedFloorDPoP(b *testing.B) {
	p := interpretFloor(b, "floordpop", "dpop")
	c := newDPoPClient(b)
	noEndpoint := func() int { return 0 }
	dpopSetup(b, p, map[string]interface{}{}, c, noEndpoint, 0).run(b, c, 0)
}
