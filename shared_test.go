package introspection

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSharedAcrossInstances: routers and reloads (new instances of one endpoint and client)
// start warm, each with its own policy; another client has its own answers.
func TestSharedAcrossInstances(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	first, _ := newMiddleware(t, testConfig(as.URL))
	reload := testConfig(as.URL)
	reload.RequiredScopes = []string{"admin"}
	reload.ClientSecret = "rotated-secret"
	second, _ := newMiddleware(t, reload)
	otherClient := testConfig(as.URL)
	otherClient.ClientID = "another-client"
	third, _ := newMiddleware(t, otherClient)
	otherTenant := testConfig(as.URL)
	otherTenant.Headers = map[string]string{"Host": "tenant-b.example"}
	fourth, _ := newMiddleware(t, otherTenant)

	if rec := serve(first, bearer("tok")); rec.Code != http.StatusOK {
		t.Fatalf("first: status = %d", rec.Code)
	}
	if rec := serve(second, bearer("tok")); rec.Code != http.StatusForbidden {
		t.Errorf("second: status = %d, want 403 from the cached result", rec.Code)
	}
	if as.callCount() != 1 {
		t.Errorf("after two instances: endpoint calls = %d, want 1", as.callCount())
	}
	if rec := serve(third, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("third: status = %d", rec.Code)
	}
	if as.callCount() != 2 {
		t.Errorf("another clientId shares no answers: endpoint calls = %d, want 2", as.callCount())
	}
	// The extra headers can select what answers (a virtual host, a tenant): another answer.
	if rec := serve(fourth, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("fourth: status = %d", rec.Code)
	}
	if as.callCount() != 3 {
		t.Errorf("other extra headers share no answers: endpoint calls = %d, want 3", as.callCount())
	}
	if first.state != second.state || first.state == third.state {
		t.Errorf("state shared by endpoint and client: first==second %v, first==third %v", first.state == second.state, first.state == third.state)
	}
}

// TestReloadResizesCache: a reload with a smaller cacheSize shrinks the shared cache.
func TestReloadResizesCache(t *testing.T) {
	as := newAuthServer(t)
	config := testConfig(as.URL)
	m, _ := newMiddleware(t, config)
	for _, tok := range []string{"a", "b", "c", "d"} {
		serve(m, bearer(tok))
	}
	config.CacheSize = 2
	reloaded, _ := newMiddleware(t, config)
	if reloaded.state.cache.len() != 2 {
		t.Errorf("cache entries after the reload = %d, want 2", reloaded.state.cache.len())
	}
}

// statesFor returns the registry's states whose endpoint starts with prefix, and the
// entries their caches hold.
func statesFor(prefix string) (int, int) {
	registryMu.Lock()
	defer registryMu.Unlock()
	states, entries := 0, 0
	for key, state := range registry {
		if strings.HasPrefix(key, prefix) {
			states++
			entries += state.cache.len()
		}
	}
	return states, entries
}

// TestSharedStatesFreed: reloads as Traefik v3 makes them (the old configuration's ctx is
// cancelled, then New builds the new one), each with a new endpoint URL, leave only the
// live state and its entries in the registry once idleStateGrace has passed.
func TestSharedStatesFreed(t *testing.T) {
	grace := idleStateGrace
	idleStateGrace = 0
	t.Cleanup(func() { idleStateGrace = grace })
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	prefix := as.URL + "/reload-"

	cancel := func() {}
	for i := 0; i < 200; i++ {
		cancel()
		ctx, cancelThis := context.WithCancel(context.Background())
		cancel = cancelThis
		handler, err := New(ctx, &backend{}, testConfig(fmt.Sprintf("%s%d", prefix, i)), "auth@reload")
		if err != nil {
			t.Fatal(err)
		}
		if rec := serve(handler, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("reload %d: status = %d", i, rec.Code)
		}
	}
	waitFor(t, "the idle states to go", func() bool { states, _ := statesFor(prefix); return states == 1 })
	if states, entries := statesFor(prefix); states != 1 || entries != 1 {
		t.Errorf("after 200 reloads: %d states holding %d entries, want 1 and 1", states, entries)
	}
	// The last one goes once its grace has passed, with no New or release after it.
	idleStateGrace = int64(10 * time.Millisecond)
	cancel()
	waitFor(t, "the last state to go", func() bool { states, _ := statesFor(prefix); return states == 0 })
}

// TestReloadStartsWarm: Traefik v3 cancels the old configuration's ctx before it builds the
// new one; within idleStateGrace the new instance still finds the cached answers.
func TestReloadStartsWarm(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	config := testConfig(as.URL + "/warm")

	ctx, cancel := context.WithCancel(context.Background())
	first, err := New(ctx, &backend{}, config, "auth@warm")
	if err != nil {
		t.Fatal(err)
	}
	serve(first, bearer("tok"))
	state := first.(*middleware).state
	cancel()
	waitFor(t, "the release", func() bool {
		registryMu.Lock()
		defer registryMu.Unlock()
		return state.users == 0
	})

	reloaded, err := New(context.Background(), &backend{}, config, "auth@warm")
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(reloaded, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 1 {
		t.Errorf("after the reload: status = %d, endpoint calls = %d; want 200 and 1", rec.Code, as.callCount())
	}
	// The old instance still serves requests Traefik routed to it.
	if rec := serve(first, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 1 {
		t.Errorf("the old instance: status = %d, endpoint calls = %d; want 200 and 1", rec.Code, as.callCount())
	}
}

// TestClaimsRulesAcrossRoutes: routes sharing a cache each decide their own claims rule
// on one answer, which keeps what every rule reads; a route built later with a rule that
// reads a claim the cached answers lack asks again rather than judge without it.
func TestClaimsRulesAcrossRoutes(t *testing.T) {
	as := newAuthServer(t)
	answer := activeClaims()
	answer["tenant"] = "acme"
	answer["realm_access"] = map[string]interface{}{"roles": []string{"user"}}
	answer["email"] = "alice@acme.example"
	as.answer("tok", answer)
	route := func(rule string) *middleware {
		config := testConfig(as.URL)
		config.Claims = rule
		m, _ := newMiddleware(t, config)
		return m
	}
	admins, acme := route("Contains(`realm_access.roles`, `admin`)"), route("Equals(`tenant`, `acme`)")
	for i := 0; i < 2; i++ {
		if rec := serve(admins, bearer("tok")); rec.Code != http.StatusForbidden {
			t.Errorf("the admins' route: status %d, want 403", rec.Code)
		}
		if rec := serve(acme, bearer("tok")); rec.Code != http.StatusOK {
			t.Errorf("the tenant's route: status %d, want 200", rec.Code)
		}
	}
	if n := as.callCount(); n != 1 {
		t.Errorf("two routes, four requests: %d endpoint calls, want 1", n)
	}
	later := route("Prefix(`email`, `alice@`)")
	if rec := serve(later, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("a route built later: status %d, want 200", rec.Code)
	}
	if n := as.callCount(); n != 2 {
		t.Errorf("a route reading a claim the cached answer dropped: %d endpoint calls in all, want 2", n)
	}
	cached, _ := acme.state.cache.entries.Load(cacheKeys(acme)[0])
	if values := cached.(*entry).res.values; len(values) != 3 || values["tenant"].items[0] != "acme" {
		t.Errorf("the cached answer keeps %v, want the three claims the rules read", values)
	}
}

// TestOlderAnswerNotJudged: a route built after an answer was reduced without a claim its
// rule reads never judges that answer, which would take the claim for missing and let
// "!" admit: not when the endpoint fails and staleIfError would serve it, not by joining
// the call an older route started for the token.
func TestOlderAnswerNotJudged(t *testing.T) {
	blocked := activeClaims()
	blocked["blocked"] = "true"
	withRule := func(config *Config) *Config {
		config.Claims = "!Equals(`blocked`, `true`)"
		return config
	}
	t.Run("staleIfError", func(t *testing.T) {
		as := newAuthServer(t)
		as.answer("tok", blocked)
		config := testConfig(as.URL)
		config.StaleIfError = "1h"
		first, _ := newMiddleware(t, config)
		if rec := serve(first, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("the route without a rule: status %d", rec.Code)
		}
		reload := testConfig(as.URL)
		reload.StaleIfError = "1h"
		later, next := newMiddleware(t, withRule(reload))
		as.failWith(func(rw http.ResponseWriter, _ *http.Request) { http.Error(rw, "down", http.StatusInternalServerError) })
		if rec := serve(later, bearer("tok")); rec.Code != http.StatusServiceUnavailable || next.count() != 0 {
			t.Errorf("status %d, backend reached %d times; want 503, not reached", rec.Code, next.count())
		}
	})
	t.Run("a call another route started", func(t *testing.T) {
		as := newAuthServer(t)
		release := make(chan struct{})
		var released sync.Once
		// Before the endpoint's own cleanup, which waits for its calls: a failure below
		// must not leave them held.
		t.Cleanup(func() { released.Do(func() { close(release) }) })
		as.answer("tok", http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			<-release
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(blocked)
		}))
		first, _ := newMiddleware(t, testConfig(as.URL))
		done := make(chan int, 1)
		go func() { done <- serve(first, bearer("tok")).Code }()
		waitFor(t, "the first route's call", func() bool { return as.callCount() == 1 })
		later, next := newMiddleware(t, withRule(testConfig(as.URL)))
		got := make(chan int, 1)
		go func() { got <- serve(later, bearer("tok")).Code }()
		waitFor(t, "the later route's own call", func() bool { return as.callCount() == 2 })
		released.Do(func() { close(release) })
		if code := <-done; code != http.StatusOK {
			t.Errorf("the route without a rule: status %d", code)
		}
		if code := <-got; code != http.StatusForbidden || next.count() != 0 {
			t.Errorf("the later route: status %d, backend reached %d times; want 403 from its own call", code, next.count())
		}
		if n := as.callCount(); n != 2 {
			t.Errorf("%d endpoint calls, want 2: the later route asks again", n)
		}
	})
}
