package introspection

import (
	"testing"
	"time"
)

// TestReplayMemory fills a small memory: it never holds more than its capacity, a replay is
// refused however full it is, a proof older than the newest one of its key forgotten is
// refused as one that might have been, and other keys are not: not even when a key floods
// proofs dated ahead.
func TestReplayMemory(t *testing.T) {
	r := newReplayMemory(3)
	r.hold(int64(time.Minute))
	wall := int64(1000 * time.Second)
	by := func(jkt, id string, iat int64) *proof { return &proof{jkt: jkt, replayKey: jkt + id, iat: iat} }
	steps := []struct {
		what  string
		proof *proof
		first bool
	}{
		{"a", by("k", "a", wall), true},
		{"b", by("k", "b", wall+1), true},
		{"c", by("k", "c", wall+2), true},
		{"b again", by("k", "b", wall+1), false},
		{"d, which makes k forget a", by("k", "d", wall+3), true},
		{"a again, forgotten", by("k", "a", wall), false},
		{"a new proof of k as old as a", by("k", "e", wall), false},
		{"a proof of another key, older still", by("h", "x", wall-1), true},
	}
	for _, step := range steps {
		if got := r.first(step.proof, wall); got != step.first || len(r.seen) > 3 {
			t.Errorf("%s: admitted %v, want %v; %d remembered, at most 3", step.what, got, step.first, len(r.seen))
		}
	}
	// A key floods proofs dated up to 30 s ahead, each a second after the last: it forgets
	// its own and the others', and raises the others' floors to no more than they had.
	for i := 0; i < 10; i++ {
		if !r.first(by("flood", string(rune('a'+i)), wall+int64(time.Duration(20+i)*time.Second)), wall) {
			t.Fatalf("flood proof %d refused", i)
		}
	}
	if r.first(by("flood", "same second as the last forgotten", wall+int64(26*time.Second)), wall) {
		t.Error("the flooding key's proof as old as its forgotten one was admitted")
	}
	if !r.first(by("honest", "now", wall), wall) {
		t.Error("after a flood dated ahead, another key's proof of now was refused")
	}
	// Past the longest dpopProofMaxAge, everything goes.
	later := wall + int64(2*time.Minute)
	if !r.first(by("k", "late", later), later) {
		t.Error("a fresh proof was refused after the window passed")
	}
	if len(r.floors) > 3 || r.raised.size() > 3 {
		t.Errorf("%d floors, %d queued, want at most 3", len(r.floors), r.raised.size())
	}
}

// TestReplayMemorySweep: expired proofs are forgotten at most 64 per request.
func TestReplayMemorySweep(t *testing.T) {
	r := newReplayMemory(1000)
	r.hold(100)
	for i := 0; i < 200; i++ {
		r.first(&proof{replayKey: string(rune(i)), iat: int64(i)}, 0)
	}
	r.first(&proof{replayKey: "new", iat: 500}, 400) // all 200 are past 300
	if len(r.seen) != 200-64+1 {
		t.Errorf("%d remembered after one request, want %d", len(r.seen), 200-64+1)
	}
}

// TestReplayAcrossInstances: a proof admitted by a route with a short dpopProofMaxAge is
// still remembered for a route on the same URL that accepts older proofs.
func TestReplayAcrossInstances(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	c := &clock{t: time.Now().Truncate(time.Second)}
	instance := func(maxAge string) *middleware {
		config := testConfig(as.URL)
		config.DPoPProofMaxAge = maxAge
		m, _ := newMiddleware(t, config)
		m.now = c.now
		return m
	}
	short, long := instance("10s"), instance("5m")
	proof := key.proof("tok", func(_, claims map[string]interface{}) { claims["iat"] = c.now().Unix() })
	if rec := serve(short, withDPoP("tok", proof)); rec.Code != 200 {
		t.Fatalf("the first use: status %d, want 200", rec.Code)
	}
	c.advance(11 * time.Second)
	if rec := serve(long, withDPoP("tok", proof)); rec.Code != 401 {
		t.Errorf("the replay 11 s later at the 5m route: status %d, want 401", rec.Code)
	}
}
