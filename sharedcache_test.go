package introspection

import (
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The replicas of these tests are middlewares whose states are not shared in the process:
// replica forgets the registry's states of the endpoint before it builds one, as a
// process of its own would start.

// sharedCacheConfig is testConfig with the shared cache at url and a key file.
func sharedCacheConfig(t testing.TB, url string) *Config {
	t.Helper()
	config := testConfig("http://127.0.0.1:1/introspect")
	config.SharedCache = url
	config.SharedCacheKeyFile = writeFile(t, "shared.key", strings.Repeat("k", 40)+"\n")
	// Round trips on loopback under -race and yaegi: 50 ms is for a production LAN.
	config.SharedCacheTimeout = "5s"
	return config
}

// replica is a middleware for config as a fresh Traefik process builds it: no state of
// the process is shared with the middlewares built before it.
func replica(t testing.TB, config *Config) (*middleware, *backend) {
	t.Helper()
	forgetStates(config.Endpoint)
	return newMiddleware(t, config)
}

// sharedSetup is an endpoint answering "tok" as active, a Redis, and a configuration of
// both that forwards sub as X-User.
func sharedSetup(t *testing.T) (*authServer, *testRedis, *Config) {
	t.Helper()
	as, _ := activeServer(t)
	r := startRedis(t)
	config := sharedCacheConfig(t, "redis://"+r.addr)
	config.Endpoint = as.URL
	config.ForwardHeaders = map[string]string{"X-User": "sub"}
	return as, r, config
}

// nameOf is the Redis key of token's entry under m's tier, gcmOf the cipher of its value.
func nameOf(m *middleware, token string) string {
	name, _ := m.state.tier.entryKeys(token)
	return name
}

func gcmOf(m *middleware, token string) cipher.AEAD {
	_, gcm := m.state.tier.entryKeys(token)
	return gcm
}

// storedValue is the value Redis holds for token under m's tier.
func storedValue(t testing.TB, r *testRedis, m *middleware, token string) []byte {
	t.Helper()
	value, found, err := r.client("").do("GET", nameOf(m, token))
	if err != nil || !found {
		t.Fatalf("Redis holds no entry for the token: %v", err)
	}
	return value
}

func TestSharedCacheAcrossReplicas(t *testing.T) {
	as, r, config := sharedSetup(t)
	for i := 1; i <= 3; i++ {
		m, next := replica(t, config)
		if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("replica %d: status %d", i, rec.Code)
		}
		if got := next.lastRequest().Header.Get("X-User"); got != "alice" {
			t.Errorf("replica %d: backend got X-User %q, want alice", i, got)
		}
		if calls := as.callCount(); calls != 1 {
			t.Errorf("after replica %d: %d introspection calls, want 1: the others read Redis", i, calls)
		}
	}
	// Inactive answers too, for negativeCacheTTL.
	for i := 1; i <= 2; i++ {
		m, _ := replica(t, config)
		if rec := serve(m, bearer("revoked")); rec.Code != http.StatusUnauthorized {
			t.Fatalf("replica %d, inactive token: status %d", i, rec.Code)
		}
	}
	if calls := as.callCount(); calls != 2 {
		t.Errorf("%d introspection calls, want 2: one per token", calls)
	}
	if keys, _, _ := r.client("").do("DBSIZE"); string(keys) != "2" {
		t.Errorf("Redis holds %s keys, want 2", keys)
	}
}

func TestSharedCacheHoldsNothingInClear(t *testing.T) {
	as, r, config := sharedSetup(t)
	token := "tok-" + strings.Repeat("t", 40)
	claims := activeClaims()
	claims["scope"] = "read:orders write:orders"
	claims["email"] = "alice@example.com"
	as.answer(token, claims)
	config.ForwardHeaders["X-Email"] = "email"
	config.Claims = "Equals(`email`, `alice@example.com`) && SplitContains(`scope`, ` `, `read:orders`)"
	m, _ := replica(t, config)
	if rec := serve(m, bearer(token)); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	name := nameOf(m, token)
	value := storedValue(t, r, m, token)
	stored := name + string(value)
	secrets := []string{token, config.ClientSecret, "alice", "alice@example.com", "read:orders", "traefik"}
	for _, claim := range []string{"iss", "aud", "client_id"} {
		if s, ok := claims[claim].(string); ok {
			secrets = append(secrets, s)
		}
	}
	for _, s := range secrets {
		for _, form := range []string{s, hex.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s))} {
			if strings.Contains(stored, form) {
				t.Errorf("Redis holds %q (as %q)", s, form)
			}
		}
	}
	if !strings.HasPrefix(name, "tokengate:") || len(name) != len("tokengate:")+43 {
		t.Errorf("key %q, want tokengate: and the HMAC's 43 base64url characters", name)
	}
}

func TestSharedCacheTTL(t *testing.T) {
	as, r, config := sharedSetup(t)
	config.CacheTTL = "30s"
	as.answer("soon", withClaim("exp", time.Now().Add(10*time.Second).Unix()))
	m, _ := replica(t, config)
	ttl := func(token string, want int) {
		t.Helper()
		if rec := serve(m, bearer(token)); rec.Code == http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d", token, rec.Code)
		}
		reply, _, _ := r.client("").do("PTTL", nameOf(m, token))
		if ms, _ := strconv.Atoi(string(reply)); ms <= 0 || ms > want {
			t.Errorf("%s: PTTL %s, want within (0, %d]", token, reply, want)
		}
	}
	ttl("tok", 30000)    // cacheTTL
	ttl("soon", 10000)   // never past exp (RFC 7662 §4)
	ttl("revoked", 5000) // negativeCacheTTL

	// Without caching, Redis is neither asked nor written.
	config.CacheTTL, config.NegativeCacheTTL = "0s", "0s"
	off, _ := replica(t, config)
	r.client("").do("FLUSHALL")
	calls := info(t, r.client(""), "total_commands_processed")
	serve(off, bearer("tok"))
	serve(off, bearer("revoked"))
	if now := info(t, r.client(""), "total_commands_processed"); now != strconv.Itoa(mustAtoi(calls)+1) {
		t.Errorf("commands %s → %s: with cacheTTL and negativeCacheTTL 0s, want only INFO's own", calls, now)
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// An entry keeps its age across replicas: the one that fetched the answer bounds how long
// it is used, so that the revocation window stays cacheTTL.
func TestSharedCacheAge(t *testing.T) {
	as, _, config := sharedSetup(t)
	config.CacheTTL = "30s"
	config.StaleIfError = "60s" // kept longer, fresh as long
	c := &clock{t: time.Now()}
	first, _ := replica(t, config)
	first.now = c.now
	serve(first, bearer("tok"))
	c.advance(20 * time.Second)
	second, _ := replica(t, config)
	second.now = c.now
	serve(second, bearer("tok"))
	if calls := as.callCount(); calls != 1 {
		t.Fatalf("%d calls at 20s, want 1", calls)
	}
	c.advance(11 * time.Second) // 31 s after the answer was fetched
	serve(second, bearer("tok"))
	if calls := as.callCount(); calls != 2 {
		t.Errorf("%d calls 31 s after the answer, want 2: the second replica's copy is as old as the first's", calls)
	}
	// Nor does Redis serve an answer older than cacheTTL, whatever its own expiry says.
	third, _ := replica(t, config)
	third.now = c.now
	c.advance(31 * time.Second)
	serve(third, bearer("tok"))
	if calls := as.callCount(); calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
}

// A replica that reads more of an answer than the one that stored it asks the endpoint
// once, and stores what both read.
func TestSharedCacheKeeps(t *testing.T) {
	as, _, config := sharedSetup(t)
	as.answer("tok", withClaim("email", "alice@example.com"))
	first, _ := replica(t, config)
	serve(first, bearer("tok"))
	more := *config
	more.ForwardHeaders = map[string]string{"X-User": "sub", "X-Email": "email"}
	for i := 1; i <= 2; i++ {
		m, next := replica(t, &more)
		serve(m, bearer("tok"))
		if got := next.lastRequest().Header.Get("X-Email"); got != "alice@example.com" {
			t.Errorf("replica %d forwarding email: X-Email %q", i, got)
		}
	}
	if calls := as.callCount(); calls != 2 {
		t.Errorf("%d calls, want 2: one for the entry without email, none for the one with", calls)
	}
}

// captureLog sends the log to a buffer until the test ends.
func captureLog(t *testing.T) *lockedBuffer {
	logs := &lockedBuffer{}
	log.SetOutput(logs)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	return logs
}

func TestSharedCacheEntriesThatDoNotOpen(t *testing.T) {
	as, r, config := sharedSetup(t)
	writer, _ := replica(t, config)
	serve(writer, bearer("tok"))
	good := storedValue(t, r, writer, "tok")
	name := nameOf(writer, "tok")

	other := *config
	other.SharedCacheKeyFile = writeFile(t, "other.key", strings.Repeat("o", 40))
	stranger, _ := replica(t, &other)
	serve(stranger, bearer("tok"))
	sealedByOther := storedValue(t, r, stranger, "tok")

	altered := func(i int) string {
		v := []byte(string(good))
		v[i] ^= 1
		return string(v)
	}
	cases := []struct {
		desc  string
		value string
	}{
		{"sealed with another sharedCacheKeyFile", string(sealedByOther)},
		{"the version byte altered", altered(0)},
		{"the nonce altered", altered(5)},
		{"the sealed answer altered", altered(20)},
		{"the tag altered", altered(len(good) - 1)},
		{"cut short", string(good[:len(good)-1])},
		{"empty", ""},
		{"plain JSON", `{"a":true,"t":0}`},
	}
	logs := captureLog(t)
	for _, tc := range cases {
		if _, _, err := r.client("").do("SET", name, tc.value); err != nil {
			t.Fatal(err)
		}
		before, logged := as.callCount(), len(logs.String())
		m, next := replica(t, config)
		if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || next.lastRequest().Header.Get("X-User") != "alice" {
			t.Errorf("%s: status %d", tc.desc, rec.Code)
		}
		if calls := as.callCount() - before; calls != 1 {
			t.Errorf("%s: %d calls, want 1: the entry is ignored", tc.desc, calls)
		}
		// The replica's answer replaced it, and opens.
		if open(gcmOf(m, "tok"), storedValue(t, r, m, "tok")) == nil {
			t.Errorf("%s: the entry was not replaced", tc.desc)
		}
		// Each replica's first is logged at once.
		if lines := logs.since(logged, "auth@test"); len(lines) != 1 || !strings.Contains(lines[0], "shared cache: 1 entries did not open") {
			t.Errorf("%s: log %q, want one line", tc.desc, lines)
		}
	}
}

func TestSharedCacheOutage(t *testing.T) {
	as, r, config := sharedSetup(t)
	logs := captureLog(t)
	r.stop()
	m, next := replica(t, config)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || next.lastRequest().Header.Get("X-User") != "alice" {
		t.Fatalf("Redis down: status %d, want the endpoint's answer", rec.Code)
	}
	lines := logs.since(0, "auth@test")
	if len(lines) != 1 || !strings.Contains(lines[0], "shared cache "+r.addr+" failed, asking the endpoint: ") {
		t.Errorf("log %q, want the failure", lines)
	}

	r.start(t)
	m.state.tier.skipUntil.Store(0) // the back-off over
	as.answer("later", activeClaims())
	serve(m, bearer("later"))
	second, _ := replica(t, config)
	serve(second, bearer("later"))
	if calls := as.callCount(); calls != 2 {
		t.Errorf("%d calls, want 2: Redis is used again once it is back", calls)
	}
	if lines := logs.since(0, "auth@test"); len(lines) != 2 || !strings.Contains(lines[1], "shared cache "+r.addr+" works again") {
		t.Errorf("log %q, want the recovery", lines)
	}
}

// After a failure, Redis is skipped for the back-off: a Redis that hangs costs one
// timeout, not one per request.
func TestSharedCacheBackoff(t *testing.T) {
	backoff := sharedBackoff
	sharedBackoff = int64(time.Hour)
	t.Cleanup(func() { sharedBackoff = backoff })
	as, _ := activeServer(t)
	addr, accepted := fakeRedis(t, "") // accepts, never answers
	config := sharedCacheConfig(t, "redis://"+addr)
	config.Endpoint = as.URL
	config.SharedCacheTimeout = "100ms"
	logs := captureLog(t)
	m, _ := replica(t, config)
	for i := 0; i < 5; i++ {
		token := "tok" + strconv.Itoa(i)
		as.answer(token, activeClaims())
		if rec := serve(m, bearer(token)); rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, rec.Code)
		}
	}
	if n := atomic.LoadInt64(accepted); n != 1 {
		t.Errorf("%d connections to Redis, want 1: the rest in the back-off", n)
	}
	if calls := as.callCount(); calls != 5 {
		t.Errorf("%d calls, want 5", calls)
	}
	if lines := logs.since(0, "auth@test"); len(lines) != 1 {
		t.Errorf("log %q, want one line", lines)
	}
}
