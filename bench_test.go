package introspection

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The cache-hit path, whole and in pieces, compiled (go test -bench) and interpreted
// (yaegi test -bench): what one request costs once its token is cached, with a bearer
// token or with a DPoP-bound one and a fresh proof.

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
	benchSinkProof *proof
	benchSinkOK    bool
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

// newBenchFixture builds the fixture from config (its endpoint filled in here), the token
// sent as a bearer token, and warms it.
func newBenchFixture(b *testing.B, config *Config) *benchFixture {
	b.Helper()
	f := startBenchFixture(b, config, activeClaims())
	bearer(benchToken)(f.req)
	f.warm(b)
	return f
}

// startBenchFixture is a middleware built from config whose endpoint answers benchToken
// with answer, and a request that carries no token yet.
func startBenchFixture(b *testing.B, config *Config, answer map[string]interface{}) *benchFixture {
	b.Helper()
	as := newAuthServer(b)
	as.answer(benchToken, answer)
	config.Endpoint = as.URL
	// Longer than any run, so a long -benchtime never times a refresh (exp is 1h too).
	config.CacheTTL = "1h"
	m, _ := newMiddleware(b, config)
	next := &benchNext{}
	m.next = next
	f := &benchFixture{m: m, next: next, as: as, rw: &benchWriter{header: http.Header{}}}
	f.req = httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil)
	return f
}

// warm sends the request once and checks, before anything is timed, that it got through
// with exactly one call and left the token cached: a benchmark of the 401 or 503 path
// would otherwise pass for a cache hit.
func (f *benchFixture) warm(b *testing.B) {
	b.Helper()
	f.m.ServeHTTP(f.rw, f.req)
	if f.next.calls != 1 || f.as.callCount() != 1 {
		b.Fatalf("warming: next reached %d times, endpoint called %d times; want 1 and 1", f.next.calls, f.as.callCount())
	}
	sum := sha256.Sum256([]byte(benchToken))
	f.key = string(sum[:])
	cached := f.m.state.cache.get(f.key, int64(f.m.now().Sub(monoEpoch))) // the cache's clock
	if cached == nil {
		b.Fatal("warming: the token is not in the cache")
	}
	f.res = cached.res
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

// BenchmarkCacheHitClaims is BenchmarkCacheHit with a two-clause claims rule: decided
// with the verdict, so a hit costs what BenchmarkCacheHit does.
func BenchmarkCacheHitClaims(b *testing.B) {
	config := testConfig("")
	config.Claims = "Equals(`sub`, `alice`) && OneOf(`client_id`, `app`, `cli`)"
	benchmarkCacheHit(b, config)
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

// dpopBench is the DPoP benchmarks' fixture: the token bound to an ES256 key, its proofs
// issued at the instant the middleware's clock is fixed at, so that they stay fresh
// however long the run.
type dpopBench struct {
	f   *benchFixture
	key *dpopKey
	iat int64 // Unix seconds, as clients write it
}

// newDPoPBenchFixture warms the token with a first proof, in a replay memory of the
// benchmark's own (the package's is restored after): the runs' proofs all have one iat,
// so earlier runs' proofs, never old by this clock, would fill the package's memory, and a
// full memory raises its floor to the iat of the proof it forgets, refusing the rest. It
// has room for one run's proofs, so nothing is forgotten while the timer runs.
func newDPoPBenchFixture(b *testing.B) *dpopBench {
	b.Helper()
	key := newDPoPKey(b, "ES256")
	f := startBenchFixture(b, testConfig(""), boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	c := &clock{t: time.Now().Truncate(time.Second)}
	f.m.now = c.now
	d := &dpopBench{f: f, key: key, iat: c.t.Unix()}

	packageMemory := proofsSeen
	b.Cleanup(func() { proofsSeen = packageMemory })
	capacity := packageMemory.capacity
	if b.N >= capacity {
		capacity = b.N + 1
	}
	proofsSeen = newReplayMemory(capacity)

	withDPoP(benchToken, d.proof())(f.req)
	f.warm(b)
	return d
}

// proof is a new proof (its own jti) for the fixture's request, issued at the fixed iat.
func (d *dpopBench) proof() string {
	iat := d.iat
	return d.key.proof(benchToken, func(header, claims map[string]interface{}) { claims["iat"] = iat })
}

// BenchmarkCacheHitDPoP is one request with a cached DPoP-bound token and a fresh ES256
// proof, each with its own jti: the proof's checks, the cached answer, the binding and the
// replay memory. The proofs are made before the timer starts.
func BenchmarkCacheHitDPoP(b *testing.B) {
	d := newDPoPBenchFixture(b)
	proofs := make([]string, b.N)
	for i := 0; i < b.N; i++ {
		proofs[i] = d.proof()
	}
	// One header value, changed in place: a new slice per request would count against the middleware.
	header := []string{""}
	d.f.req.Header["Dpop"] = header
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		header[0] = proofs[i]
		d.f.m.ServeHTTP(d.f.rw, d.f.req)
	}
	b.StopTimer()
	d.f.verify(b, b.N)
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

// BenchmarkDPoPProof is the proof's checks before the token's answer is read (readProof):
// the JWS, its key and signature, its claims against the request. One proof throughout:
// the replay is judged later (confirm).
func BenchmarkDPoPProof(b *testing.B) {
	d := newDPoPBenchFixture(b)
	wall := d.f.m.now().UnixNano()
	sum := sha256.Sum256([]byte(benchToken)) // verdictFor's, which it hands readProof
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSinkProof, benchSinkRej, _ = d.f.m.readProof(d.f.req, sum[:], wall)
	}
	b.StopTimer()
	if benchSinkProof == nil || benchSinkRej != nil {
		b.Fatalf("readProof = %v, %v", benchSinkProof, benchSinkRej)
	}
}

// BenchmarkDPoPSignature is the ES256 signature check alone (verifySignature: a SHA-256
// and the standard library's ecdsa.Verify), its key already read: the part of
// BenchmarkDPoPProof that the standard library does.
func BenchmarkDPoPSignature(b *testing.B) {
	key := newDPoPKey(b, "ES256")
	parts := strings.Split(key.proof(benchToken, nil), ".")
	input := []byte(parts[0] + "." + parts[1])
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		b.Fatal(err)
	}
	jwk, err := json.Marshal(key.jwk)
	if err != nil {
		b.Fatal(err)
	}
	public, _, err := proofKey(jwk)
	if err != nil {
		b.Fatal(err)
	}
	alg := jwsAlgNamed("ES256")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSinkOK = verifySignature(alg, public, input, sig)
	}
	b.StopTimer()
	if !benchSinkOK {
		b.Fatal("the signature does not verify")
	}
}
