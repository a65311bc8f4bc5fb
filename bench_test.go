package introspection

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The cache-hit path, whole and in pieces, compiled (go test -bench) and interpreted
// (yaegi test -bench): what one request costs once its token is cached.

const benchToken = "bench-token-0123456789abcdefghijklmnopqrstuvwxyz"

// benchWriter is a ResponseWriter that keeps nothing, so the recorder's allocations do
// not hide the middleware's.
type benchWriter struct {
	header http.Header
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(status int)      {}

// benchNext counts the requests that got through.
type benchNext struct {
	calls int
}

func (n *benchNext) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	n.calls++
}

// Sinks keep the compiler from dropping the measured calls.
var (
	benchSinkToken string
	benchSinkKey   string
	benchSinkEntry *entry
	benchSinkRej   *rejection
)

// benchFixture is a middleware whose endpoint knows benchToken, the token already cached,
// and a request that carries it.
type benchFixture struct {
	m    *middleware
	next *benchNext
	as   *authServer
	req  *http.Request
	rw   *benchWriter
	key  string
	res  *result
}

// newBenchFixture builds the fixture from config (its endpoint filled in here) and checks,
// before anything is timed, that the warming request got through with exactly one call:
// a benchmark of the 401 or 503 path would otherwise pass for a cache hit.
func newBenchFixture(b *testing.B, config *Config) *benchFixture {
	b.Helper()
	as := newAuthServer(b)
	as.answer(benchToken, activeClaims())
	config.Endpoint = as.URL
	// Longer than any run, so a long -benchtime never times a refresh (exp is 1h too).
	config.CacheTTL = "1h"
	m, _ := newMiddleware(b, config)
	next := &benchNext{}
	m.next = next
	f := &benchFixture{m: m, next: next, as: as, rw: &benchWriter{header: http.Header{}}}
	f.req = httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil)
	bearer(benchToken)(f.req)

	f.m.ServeHTTP(f.rw, f.req)
	if next.calls != 1 || as.callCount() != 1 {
		b.Fatalf("warming: next reached %d times, endpoint called %d times; want 1 and 1", next.calls, as.callCount())
	}
	sum := sha256.Sum256([]byte(benchToken))
	f.key = string(sum[:])
	cached := f.m.state.cache.get(f.key, int64(time.Since(monoEpoch)))
	if cached == nil {
		b.Fatal("warming: the token is not in the cache")
	}
	f.res = cached.res
	return f
}

// verify checks, after the timed loop, that every iteration was a hit that reached next.
func (f *benchFixture) verify(b *testing.B, iterations int) {
	b.Helper()
	if f.next.calls != iterations+1 || f.as.callCount() != 1 {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times; want %d and 1",
			iterations, f.next.calls, f.as.callCount(), iterations+1)
	}
}

// benchPolicyConfig makes check do real work: two scopes to look up and an audience
// found at the second of the token's aud values ("api", "other").
func benchPolicyConfig() *Config {
	config := testConfig("")
	config.RequiredScopes = []string{"read", "write"}
	config.Audiences = []string{"other"}
	return config
}

// BenchmarkCacheHit is one request with a cached token, default configuration.
func BenchmarkCacheHit(b *testing.B) {
	benchmarkCacheHit(b, testConfig(""))
}

// BenchmarkCacheHitPolicy is BenchmarkCacheHit with scopes and an audience to check.
func BenchmarkCacheHitPolicy(b *testing.B) {
	benchmarkCacheHit(b, benchPolicyConfig())
}

func benchmarkCacheHit(b *testing.B, config *Config) {
	f := newBenchFixture(b, config)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.m.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	f.verify(b, b.N)
}

// BenchmarkExtract is the token's extraction from the Authorization header.
func BenchmarkExtract(b *testing.B) {
	f := newBenchFixture(b, testConfig(""))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSinkToken, _, benchSinkRej = f.m.extract(f.req)
	}
	b.StopTimer()
	if benchSinkToken != benchToken || benchSinkRej != nil {
		b.Fatalf("extract = %q, %v", benchSinkToken, benchSinkRej)
	}
}

// BenchmarkCacheKey is the cache key as ServeHTTP computes it.
func BenchmarkCacheKey(b *testing.B) {
	f := newBenchFixture(b, testConfig(""))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sum := sha256.Sum256([]byte(benchToken))
		benchSinkKey = string(sum[:])
	}
	b.StopTimer()
	if benchSinkKey != f.key {
		b.Fatal("the key differs from the cached one")
	}
}

// BenchmarkCacheGet is the lookup of a cached key.
func BenchmarkCacheGet(b *testing.B) {
	f := newBenchFixture(b, testConfig(""))
	now := int64(time.Since(monoEpoch)) // the cache's clock
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSinkEntry = f.m.state.cache.get(f.key, now)
	}
	b.StopTimer()
	if benchSinkEntry == nil {
		b.Fatal("cache miss")
	}
}

// BenchmarkCheckPolicy is the route's scopes and audience applied to the cached result.
func BenchmarkCheckPolicy(b *testing.B) {
	f := newBenchFixture(b, benchPolicyConfig())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSinkRej = f.m.checkPolicy(f.res)
	}
	b.StopTimer()
	if benchSinkRej != nil {
		b.Fatalf("checkPolicy = %v, want nil", benchSinkRej)
	}
}
