package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

const interpToken = "writer-token" // active at loaderStartAuth's endpoint

// interpWriter is a ResponseWriter that keeps nothing, so the recorder's allocations do
// not hide the plugin's.
type interpWriter struct {
	header http.Header
}

func (w *interpWriter) Header() http.Header         { return w.header }
func (w *interpWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *interpWriter) WriteHeader(int)             {}

// interpNext counts the requests that got through.
type interpNext struct {
	calls int
}

func (n *interpNext) ServeHTTP(http.ResponseWriter, *http.Request) { n.calls++ }

// interpFixture is an interpreted middleware with interpToken cached, and a request that
// carries the token.
type interpFixture struct {
	handler http.Handler
	next    *interpNext
	auth    *loaderAuthServer
	req     *http.Request
	rw      *interpWriter
}

// interpSetup loads the plugin with loadPlugin, builds a middleware from docker labels with
// the given cacheTTL and sends one request, checking that it got through with one call.
func interpSetup(b *testing.B, cacheTTL string) *interpFixture {
	b.Helper()
	p := loadPlugin(context.Background(), b, os.Environ())
	auth := loaderStartAuth(b, false)
	raw := decodePluginLabels(b, loaderKeys(auth.URL, map[string]string{"cacheTTL": cacheTTL}))
	next := &interpNext{}
	handler, err := p.New(raw, next)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil)
	req.Header.Set("Authorization", "Bearer "+interpToken)
	rw := &interpWriter{header: http.Header{}}
	handler.ServeHTTP(rw, req)
	if next.calls != 1 || auth.calls.Load() != 1 {
		b.Fatalf("first request: next reached %d times, endpoint called %d times; want 1 and 1", next.calls, auth.calls.Load())
	}
	return &interpFixture{handler: handler, next: next, auth: auth, req: req, rw: rw}
}

// BenchmarkInterpretedCacheHit is one request with a cached token through the plugin as
// yaegi interprets it. The endpoint is closed before anything is timed, so a request that
// missed the cache would fail (503) and the check after the timed loop would see it.
func BenchmarkInterpretedCacheHit(b *testing.B) {
	f := interpSetup(b, "1h") // longer than any run, so a long -benchtime never times a refresh
	f.auth.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.handler.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	if f.next.calls != 1+b.N || f.auth.calls.Load() != 1 {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times in all; want %d and 1",
			b.N, f.next.calls-1, f.auth.calls.Load(), b.N)
	}
}

// BenchmarkInterpretedCacheMiss is one request with cacheTTL 0s: one introspection call to
// a local endpoint (whose own work is in the figure), as with a flood of new tokens.
func BenchmarkInterpretedCacheMiss(b *testing.B) {
	f := interpSetup(b, "0s")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.handler.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	if f.next.calls != 1+b.N || f.auth.calls.Load() != int64(1+b.N) {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times; want %d and %d",
			b.N, f.next.calls-1, f.auth.calls.Load()-1, b.N, b.N)
	}
}
