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

// interpSetup loads the plugin with loadPlugin, builds a middleware from docker labels and
// warms the cache with one request, checking that it got through with exactly one call.
// The endpoint is closed before anything is timed, so a request that missed the cache
// would fail (503) and the check after the timed loop would see it.
func interpSetup(b *testing.B) *interpFixture {
	b.Helper()
	p := loadPlugin(context.Background(), b, os.Environ())
	auth := loaderStartAuth(b, false)
	// Longer than any run, so a long -benchtime never times a refresh.
	raw := decodePluginLabels(b, loaderKeys(auth.URL, map[string]string{"cacheTTL": "1h"}))
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
		b.Fatalf("warming: next reached %d times, endpoint called %d times; want 1 and 1", next.calls, auth.calls.Load())
	}
	auth.Close()
	return &interpFixture{handler: handler, next: next, auth: auth, req: req, rw: rw}
}

// BenchmarkInterpretedCacheHit is one request with a cached token through the plugin as
// yaegi interprets it, default configuration.
func BenchmarkInterpretedCacheHit(b *testing.B) {
	f := interpSetup(b)
	before := f.next.calls
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.handler.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	if f.next.calls != before+b.N || f.auth.calls.Load() != 1 {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times in all; want %d and 1",
			b.N, f.next.calls-before, f.auth.calls.Load(), b.N)
	}
}
