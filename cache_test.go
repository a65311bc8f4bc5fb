package introspection

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCache: reuse within the TTLs, never past exp, counted in endpoint calls.
func TestCache(t *testing.T) {
	type step struct {
		advance time.Duration
		status  int
		calls   int // total endpoint calls after this request
	}
	cases := []struct {
		desc      string
		configure func(*Config)
		answer    map[string]interface{}
		expIn     time.Duration // when set, exp is this long after the clock's start
		steps     []step
	}{
		{
			desc:   "active reused for cacheTTL",
			answer: activeClaims(),
			steps:  []step{{0, 200, 1}, {29 * time.Second, 200, 1}, {2 * time.Second, 200, 2}, {time.Second, 200, 2}},
		},
		{
			desc:      "cacheTTL 0s calls every time",
			configure: func(c *Config) { c.CacheTTL = "0s" },
			answer:    activeClaims(),
			steps:     []step{{0, 200, 1}, {0, 200, 2}, {0, 200, 3}},
		},
		{
			desc:      "never past exp, even within clockSkew",
			configure: func(c *Config) { c.CacheTTL = "5m"; c.ClockSkew = "1m" },
			answer:    activeClaims(),
			expIn:     10 * time.Second,
			steps:     []step{{0, 200, 1}, {5 * time.Second, 200, 1}, {10 * time.Second, 200, 2}},
		},
		{
			desc:   "inactive reused for negativeCacheTTL",
			answer: map[string]interface{}{"active": false},
			steps:  []step{{0, 401, 1}, {4 * time.Second, 401, 1}, {2 * time.Second, 401, 2}},
		},
		{
			desc:      "negativeCacheTTL 0s",
			configure: func(c *Config) { c.NegativeCacheTTL = "0s" },
			answer:    map[string]interface{}{"active": false},
			steps:     []step{{0, 401, 1}, {0, 401, 2}},
		},
		{
			desc:   "expiry is checked on every hit",
			answer: activeClaims(),
			expIn:  5 * time.Second,
			steps:  []step{{0, 200, 1}, {4 * time.Second, 200, 1}, {40 * time.Second, 401, 2}},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			// exp is in whole seconds: start the clock on one, so steps are exact.
			clk := &clock{t: time.Unix(time.Now().Unix(), 0)}
			if tc.expIn != 0 {
				tc.answer["exp"] = clk.now().Add(tc.expIn).Unix()
			}
			as.answer("tok", tc.answer)
			config := testConfig(as.URL)
			if tc.configure != nil {
				tc.configure(config)
			}
			m, _ := newMiddleware(t, config)
			m.now = clk.now
			for i, s := range tc.steps {
				clk.advance(s.advance)
				if rec := serve(m, bearer("tok")); rec.Code != s.status {
					t.Errorf("step %d: status = %d, want %d", i, rec.Code, s.status)
				}
				if as.callCount() != s.calls {
					t.Errorf("step %d: endpoint calls = %d, want %d", i, as.callCount(), s.calls)
				}
			}
		})
	}
}

// TestCacheHoldsNoToken: keys are hashes; the raw token is nowhere in the cache.
func TestCacheHoldsNoToken(t *testing.T) {
	as := newAuthServer(t)
	as.answer("secret-token-value", activeClaims())
	m, _ := newMiddleware(t, testConfig(as.URL))
	serve(m, bearer("secret-token-value"))
	if m.state.cache.len() != 1 {
		t.Fatalf("cache entries = %d, want 1", m.state.cache.len())
	}
	for _, key := range cacheKeys(m) {
		if strings.Contains(key, "secret-token-value") || len(key) != 32 {
			t.Errorf("cache key is not a SHA-256 digest: %q", key)
		}
	}
}

func TestCacheSize(t *testing.T) {
	as := newAuthServer(t)
	for _, tok := range []string{"a", "b", "c"} {
		as.answer(tok, activeClaims())
	}
	config := testConfig(as.URL)
	config.CacheSize = 2
	m, _ := newMiddleware(t, config)

	for _, tok := range []string{"a", "b", "a", "c"} { // "b" is now the least recently used
		serve(m, bearer(tok))
	}
	if m.state.cache.len() != 2 || as.callCount() != 3 {
		t.Fatalf("entries = %d, calls = %d; want 2 and 3", m.state.cache.len(), as.callCount())
	}
	serve(m, bearer("a"))
	serve(m, bearer("c"))
	if as.callCount() != 3 {
		t.Errorf("a and c were evicted: calls = %d, want 3", as.callCount())
	}
	serve(m, bearer("b"))
	if as.callCount() != 4 {
		t.Errorf("b was kept: calls = %d, want 4", as.callCount())
	}
}

// TestCacheBytes: an entry keeps what the routes sharing the cache read of an answer, not
// the answer, so a cache bounded in entries is bounded in bytes; an answer whose kept part
// is over maxEntryBytes is used for its request and not cached.
func TestCacheBytes(t *testing.T) {
	as := newAuthServer(t)
	big := strings.Repeat("x", 512<<10) // half a MiB of claims nobody forwards
	large := strings.Repeat("y", maxEntryBytes)
	for i := 0; i < 20; i++ {
		as.answer(fmt.Sprintf("big-%d", i), withClaim("profile", big))
	}
	as.answer("large-subject", withClaim("sub", large))
	config := testConfig(as.URL)
	config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub"}
	m, next := newMiddleware(t, config)

	for i := 0; i < 20; i++ {
		if rec := serve(m, bearer(fmt.Sprintf("big-%d", i))); rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200", rec.Code)
		}
		if got := next.lastRequest().Header.Get("X-Auth-Subject"); got != "alice" {
			t.Fatalf("X-Auth-Subject = %q, want alice", got)
		}
	}
	if entries, held := m.state.cache.len(), heldBytes(m.state.cache); entries != 20 || held > 20*1024 {
		t.Errorf("20 answers of %d KiB: %d entries holding %d bytes; want 20 entries, at most 1 KiB each", len(big)>>10, entries, held)
	}

	// A kept claim over the bound: admitted with it each time, never cached.
	for i := 1; i <= 2; i++ {
		calls := as.callCount()
		if rec := serve(m, bearer("large-subject")); rec.Code != http.StatusOK || as.callCount() != calls+1 {
			t.Fatalf("request %d: status = %d, endpoint calls %d; want 200 and one call", i, rec.Code, as.callCount()-calls)
		}
		if got := next.lastRequest().Header.Get("X-Auth-Subject"); got != large {
			t.Errorf("request %d: X-Auth-Subject has %d bytes, want %d", i, len(got), len(large))
		}
	}
	if entries := m.state.cache.len(); entries != 20 {
		t.Errorf("entries = %d after the large answer, want 20: it is not cached", entries)
	}
}

// heldBytes is what the cache's entries hold, as entrySize counts it.
func heldBytes(c *cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := 0
	for _, e := range c.slots {
		if e != nil {
			held += entrySize(e.key, e.res)
		}
	}
	return held
}

func TestStaleIfError(t *testing.T) {
	cases := []struct {
		desc         string
		staleIfError string
		exp          time.Duration
		advance      time.Duration
		status       int
	}{
		{"off: the endpoint's failure is a 503", "0s", time.Hour, 40 * time.Second, 503},
		{"on: the cached active result is served", "1m", time.Hour, 40 * time.Second, 200},
		{"on, but not longer than staleIfError past cacheTTL", "1m", time.Hour, 100 * time.Second, 503},
		{"on, but never past exp", "1m", 35 * time.Second, 40 * time.Second, 503},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("tok", withClaim("exp", time.Now().Add(tc.exp).Unix()))
			config := testConfig(as.URL)
			config.StaleIfError = tc.staleIfError
			config.ClockSkew = "0s"
			m, _ := newMiddleware(t, config)
			clk := &clock{t: time.Now()}
			m.now = clk.now

			if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
				t.Fatalf("first request: status = %d", rec.Code)
			}
			as.failWith(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(500) })
			clk.advance(tc.advance)
			if rec := serve(m, bearer("tok")); rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if tc.status == http.StatusOK && as.callCount() != 2 {
				t.Errorf("endpoint calls = %d, want 2: the stale result is served only after a try", as.callCount())
			}
		})
	}
}

// TestCacheAgesMonotonic: an answer's age is measured on the monotonic clock, so a step
// back of the wall clock does not extend it; exp is still read on the wall clock.
func TestCacheAgesMonotonic(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", withClaim("exp", time.Now().Add(time.Hour).Unix()))
	m, next := newMiddleware(t, testConfig(as.URL)) // cacheTTL 30s
	clk := &clock{t: time.Now()}
	m.now = clk.now
	serve(m, bearer("tok"))

	// 31 s pass while the wall clock steps back an hour. A time's monotonic reading moves
	// with its wall one under Add, so the origin of the monotonic clock moves back instead:
	// to t.Sub(monoEpoch) that is 31 s.
	epoch := monoEpoch
	t.Cleanup(func() { monoEpoch = epoch })
	clk.advance(-time.Hour)
	monoEpoch = monoEpoch.Add(-time.Hour - 31*time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 2 {
		t.Errorf("31 s later, the wall clock an hour back: status = %d, endpoint calls = %d; want 200 and 2",
			rec.Code, as.callCount())
	}

	// The wall clock three hours on, 31 s later: past exp once the answer is judged again,
	// which a verdict waits for at most cacheTTL.
	clk.advance(3 * time.Hour)
	monoEpoch = monoEpoch.Add(3*time.Hour - 31*time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusUnauthorized || next.count() != 2 {
		t.Errorf("past exp on the wall clock: status = %d, backend requests = %d; want 401 and 2", rec.Code, next.count())
	}
}

// TestInstanceTTLOnSharedCache: an instance with a shorter cacheTTL does not reuse an
// entry another instance stored for longer.
func TestInstanceTTLOnSharedCache(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	long := testConfig(as.URL)
	long.CacheTTL = "10m"
	short := testConfig(as.URL)
	short.CacheTTL = "10s"
	a, _ := newMiddleware(t, long)
	b, _ := newMiddleware(t, short)
	clk := &clock{t: time.Now()}
	a.now, b.now = clk.now, clk.now

	serve(a, bearer("tok"))
	clk.advance(20 * time.Second)
	serve(b, bearer("tok"))
	if as.callCount() != 2 {
		t.Errorf("endpoint calls = %d, want 2", as.callCount())
	}
}
