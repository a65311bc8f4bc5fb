package introspection

import (
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStaleIfErrorNotWhenBusy: maxConcurrentIntrospections reached is not an endpoint
// failure: a cached answer past cacheTTL is not served stale, since any client can fill the
// calls with random tokens while the endpoint is well.
func TestStaleIfErrorNotWhenBusy(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	as.answer("other", activeClaims())
	config := testConfig(as.URL)
	config.StaleIfError = "1m"
	config.MaxConcurrentIntrospections = 1
	m, _ := newMiddleware(t, config)
	clk := &clock{t: time.Now()}
	m.now = clk.now
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
		t.Fatalf("first request: status = %d", rec.Code)
	}

	release := as.hold()
	held := make(chan int, 1)
	go func() { held <- serve(m, bearer("other")).Code }()
	waitFor(t, "the call for the other token", func() bool { return as.callCount() == 2 })
	clk.advance(40 * time.Second)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("cached token past cacheTTL while the calls are taken: status = %d, want 503", rec.Code)
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Errorf("the request holding the call got %d, want 200", code)
	}
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 3 {
		t.Errorf("once the call ended: status = %d, endpoint calls = %d; want 200 and 3", rec.Code, as.callCount())
	}
}

// TestSingleFlight: concurrent requests for one new token make one call.
func TestSingleFlight(t *testing.T) {
	const requests = 20
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	m, next := newMiddleware(t, testConfig(as.URL))
	release := as.hold()

	var wg sync.WaitGroup
	codes := make([]int, requests)
	for i := 0; i < requests; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = serve(m, bearer("tok")).Code
		}()
	}
	// Let the endpoint answer once every other request waits on the call in flight.
	waitFor(t, "the other requests to wait on the call", func() bool { return waiting(m) == requests-1 })
	close(release)
	wg.Wait()

	if as.callCount() != 1 {
		t.Errorf("endpoint calls = %d, want 1", as.callCount())
	}
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("request %d: status = %d", i, code)
		}
	}
	if next.count() != requests {
		t.Errorf("backend requests = %d, want %d", next.count(), requests)
	}
}

// TestWaiterLeaves: a request waiting on another's call stops waiting when it ends itself;
// the call goes on, and its answer serves the request that made it. The client that left
// says nothing about the endpoint: nothing is logged as a failure, nor then as a recovery,
// and no stale answer is served for it.
func TestWaiterLeaves(t *testing.T) {
	for _, staleIfError := range []string{"0s", "1m"} {
		staleIfError := staleIfError
		t.Run("staleIfError "+staleIfError, func(t *testing.T) { testWaiterLeaves(t, staleIfError) })
	}
}

func testWaiterLeaves(t *testing.T, staleIfError string) {
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	as, config := activeServer(t)
	config.StaleIfError = staleIfError
	m, next := newMiddleware(t, config)
	m.name = "auth@waiter"
	clk := &clock{t: time.Now()}
	m.now = clk.now
	// Cached, then past cacheTTL: with staleIfError, an answer a failure could fall back on.
	serve(m, bearer("tok"))
	clk.advance(40 * time.Second)
	release := as.hold()

	leader := make(chan int, 1)
	go func() { leader <- serve(m, bearer("tok")).Code }()
	waitFor(t, "the leader's call", func() bool { return as.callCount() == 2 })
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		waiter <- rec.Code
	}()
	waitFor(t, "the waiter", func() bool { return waiting(m) == 1 })
	cancel()

	// Answered while the call is still held: a waiter that kept waiting would fail here.
	waitFor(t, "the waiter to leave", func() bool { return len(waiter) == 1 })
	if code := <-waiter; code != http.StatusServiceUnavailable {
		t.Errorf("the waiter whose request ended got %d, want 503", code)
	}
	close(release)
	if code := <-leader; code != http.StatusOK {
		t.Errorf("the request that made the call got %d, want 200", code)
	}
	if as.callCount() != 2 || next.count() != 2 {
		t.Errorf("endpoint calls = %d, backend requests = %d; want 2 and 2", as.callCount(), next.count())
	}
	if lines := logs.since(0, m.name); len(lines) > 0 {
		t.Errorf("logged about the endpoint:\n%s", strings.Join(lines, "\n"))
	}
}
