// The plugin as Traefik runs it, interpreted by yaegi and called from compiled code: the
// cache-hit path's benchmarks (their compiled counterpart is BenchmarkCacheHit in the
// plugin's package), each beside its floor. The herds of concurrent requests are
// loader/herd_test.go.
package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

const interpToken = "writer-token" // active at loader.StartExampleServer's endpoint, sub "alice"

// interpSpoof is the forged identity header every request of the header benchmarks carries,
// as Go's server hands X_Auth_Subject over.
const interpSpoof = "X_auth_subject"

// interpWriter is a ResponseWriter that keeps nothing, so the recorder's allocations do
// not hide the plugin's.
type interpWriter struct {
	header http.Header
}

func (w *interpWriter) Header() http.Header         { return w.header }
func (w *interpWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *interpWriter) WriteHeader(int)             {}

// interpNext counts the requests that got through and keeps the last one's X-Auth-Subject.
type interpNext struct {
	calls   int
	subject string
}

func (n *interpNext) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	n.calls++
	n.subject = r.Header.Get("X-Auth-Subject")
}

// interpFixture is an interpreted middleware, the plugin or a benchmark floor, with
// interpToken cached when its configuration caches, and a request that carries the token.
type interpFixture struct {
	handler http.Handler
	next    *interpNext
	auth    *loader.ExampleServer
	req     *http.Request
	rw      *interpWriter
}

// interpSetup builds p's middleware from raw, with auth as its endpoint, and sends one
// request, checking that it got through with calls endpoint calls.
func interpSetup(b *testing.B, p *loader.Plugin, auth *loader.ExampleServer, raw map[string]interface{}, calls int64) *interpFixture {
	b.Helper()
	next := &interpNext{}
	handler, err := p.New(raw, next)
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil)
	req.Header.Set("Authorization", "Bearer "+interpToken)
	rw := &interpWriter{header: http.Header{}}
	handler.ServeHTTP(rw, req)
	if next.calls != 1 || auth.Calls.Load() != calls {
		b.Fatalf("first request: next reached %d times, endpoint called %d times; want 1 and %d", next.calls, auth.Calls.Load(), calls)
	}
	return &interpFixture{handler: handler, next: next, auth: auth, req: req, rw: rw}
}

// pluginSetup is interpSetup for the plugin, loaded with loader.Load and configured by
// docker labels with these extra keys.
func pluginSetup(b *testing.B, extra map[string]string) *interpFixture {
	b.Helper()
	p := loader.Load(context.Background(), b, os.Environ())
	auth := loader.StartExampleServer(b, false)
	return interpSetup(b, p, auth, loader.DecodePluginLabels(b, loader.Keys(auth.URL, extra)), 1)
}

// floorSetup is interpSetup for the benchmark's floor in bench/floors/dir, interpreted as
// Traefik interprets a local plugin; the cached floors call no endpoint.
func floorSetup(b *testing.B, alias, dir string, calls int64) *interpFixture {
	b.Helper()
	p := interpretFloor(b, alias, dir)
	auth := loader.StartExampleServer(b, false)
	raw := map[string]interface{}{"endpoint": auth.URL, "clientId": loader.ClientID, "clientSecret": loader.ClientSecret}
	return interpSetup(b, p, auth, raw, calls)
}

// run times b.N requests; spoof adds the forged header to each, as a client would send it.
// The check after the loop holds every request to the endpoint calls wanted in all (1 when
// the token stays cached) and to the backend's X-Auth-Subject.
func (f *interpFixture) run(b *testing.B, spoof bool, wantCalls func(n int) int64, wantSubject string) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if spoof {
			f.req.Header[interpSpoof] = []string{"mallory"}
		}
		f.handler.ServeHTTP(f.rw, f.req)
	}
	b.StopTimer()
	if f.next.calls != 1+b.N || f.auth.Calls.Load() != wantCalls(b.N) || f.next.subject != wantSubject {
		b.Fatalf("after %d requests: next reached %d times with X-Auth-Subject %q, endpoint called %d times in all; want %d, %q and %d",
			b.N, f.next.calls-1, f.next.subject, f.auth.Calls.Load(), b.N, wantSubject, wantCalls(b.N))
	}
	if _, forged := f.req.Header[interpSpoof]; forged {
		b.Fatalf("the forged %s reached the backend", interpSpoof)
	}
}

// The endpoint calls a benchmark of n requests makes in all, its first request included.
func noCall(int) int64     { return 0 }
func oneCall(int) int64    { return 1 }
func callEach(n int) int64 { return int64(1 + n) }

func cached(extra map[string]string) map[string]string {
	extra["cacheTTL"] = "1h" // longer than any run, so a long -benchtime never times a refresh
	return extra
}

// BenchmarkInterpretedCacheHit is one request with a cached token through the plugin as
// yaegi interprets it, default configuration; BenchmarkInterpretedFloorCached is the least
// such a check can do (bench/floors/cached).
func BenchmarkInterpretedCacheHit(b *testing.B) {
	pluginSetup(b, cached(map[string]string{})).run(b, false, oneCall, "")
}

func BenchmarkInterpretedFloorCached(b *testing.B) {
	floorSetup(b, "floorcached", "cached", 0).run(b, false, noCall, "")
}

// BenchmarkInterpretedCacheHitHeader is BenchmarkInterpretedCacheHit with one forwardHeaders
// entry and a forged spelling of it on every request; BenchmarkInterpretedFloorHeader is its
// floor (bench/floors/header), whose verdict says "bench-user".
func BenchmarkInterpretedCacheHitHeader(b *testing.B) {
	pluginSetup(b, cached(map[string]string{"forwardHeaders.X-Auth-Subject": "sub"})).run(b, true, oneCall, "alice")
}

func BenchmarkInterpretedFloorHeader(b *testing.B) {
	floorSetup(b, "floorheader", "header", 0).run(b, true, noCall, "bench-user")
}

// BenchmarkInterpretedCacheMiss is one request with cacheTTL 0s: one introspection call to a
// local endpoint (whose own work is in the figure), as with a flood of new tokens;
// BenchmarkInterpretedFloorUncached is its floor (bench/floors/uncached).
func BenchmarkInterpretedCacheMiss(b *testing.B) {
	pluginSetup(b, map[string]string{"cacheTTL": "0s"}).run(b, false, callEach, "")
}

// BenchmarkInterpretedCacheMissClaims is BenchmarkInterpretedCacheMiss on a route with a
// two-clause claims rule: what the rule costs when every request is a new answer (its
// values read, the rule judged).
func BenchmarkInterpretedCacheMissClaims(b *testing.B) {
	pluginSetup(b, map[string]string{"cacheTTL": "0s", "claims": "!Equals(`sub`, `nobody`) && !OneOf(`client_id`, `nobody`, `x`)"}).run(b, false, callEach, "")
}

func BenchmarkInterpretedFloorUncached(b *testing.B) {
	floorSetup(b, "flooruncached", "uncached", 1).run(b, false, callEach, "")
}

// interpretFloor loads the floor plugin in bench/floors/dir as alias, interpreted.
func interpretFloor(b *testing.B, alias, dir string) *loader.Plugin {
	b.Helper()
	floor, err := harness.SourcePlugin(alias, "bench/floors/"+dir)
	if err != nil {
		b.Fatal(err)
	}
	goPath := b.TempDir()
	if err := floor.Install(goPath); err != nil {
		b.Fatal(err)
	}
	return loader.Interpret(context.Background(), b, os.Environ(), goPath, floor.Module, "")
}

// BenchmarkInterpretedSharedCacheHit is a request whose token the process's cache does not
// hold and Redis does (sharedCache): cacheSize 1 and two tokens taking turns, each stored
// in Redis by the first requests. Its counterparts are BenchmarkInterpretedCacheHit (a
// local hit) and BenchmarkInterpretedCacheMiss (an endpoint call).
func BenchmarkInterpretedSharedCacheHit(b *testing.B) {
	redis, err := harness.StartRedis(b.TempDir(), harness.RedisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(redis.Stop)
	keyFile := b.TempDir() + "/shared.key"
	if err := os.WriteFile(keyFile, []byte(harness.RandomID()+harness.RandomID()), 0o600); err != nil {
		b.Fatal(err)
	}
	f := pluginSetup(b, cached(map[string]string{"cacheSize": "1", "sharedCache": redis.URL(), "sharedCacheKeyFile": keyFile}))
	other := f.req.Clone(context.Background())
	other.Header.Set("Authorization", "Bearer reader-token")
	f.handler.ServeHTTP(f.rw, other) // the second token's call
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			f.handler.ServeHTTP(f.rw, other)
		} else {
			f.handler.ServeHTTP(f.rw, f.req)
		}
	}
	b.StopTimer()
	if f.next.calls != 2+b.N || f.auth.Calls.Load() != 2 {
		b.Fatalf("after %d requests: next reached %d times, endpoint called %d times; want %d and 2 (Redis answers the rest)",
			b.N, f.next.calls-2, f.auth.Calls.Load(), b.N)
	}
}
