package introspection

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// endpointState is what all middleware instances calling one endpoint as one client share.
// Traefik calls New once per router, per chain use and again on every configuration
// reload, so this registry is what lets a new router or a reload start with a warm cache,
// open keep-alive connections, one in-flight call per token and one bound on those calls.
// It holds one entry per distinct endpoint, client and TLS setting in use: a state no live
// instance uses leaves it after idleStateGrace (see release).
type endpointState struct {
	client   *http.Client
	cache    *cache
	flight   *flight
	failures failureLog

	// Guarded by registryMu: the instances whose ctx is live, and since when (monotonic
	// ns, like the request path's now) there is none.
	users     int
	idleSince int64

	// What the instances sharing the cache read of an answer beyond the policy's members:
	// the claims their forwardHeaders name and, for forwardIntrospectionJWT, the signed
	// answer. An answer keeps only these (RFC 7662 §5: no more than needed, and a cache
	// bounded in entries stays bounded in bytes). The set only grows; each growth is a new
	// generation, and an entry reduced under an older one is not used by an instance that
	// needs more.
	wantsMu    sync.Mutex
	wantClaims []string
	wantSigned bool
	wantsGen   int
}

// want adds what one instance reads and returns the generation that holds it.
func (s *endpointState) want(claims []string, signed bool) int {
	s.wantsMu.Lock()
	defer s.wantsMu.Unlock()
	grown := signed && !s.wantSigned
	for _, claim := range claims {
		if !contains(s.wantClaims, claim) {
			s.wantClaims = append(s.wantClaims[:len(s.wantClaims):len(s.wantClaims)], claim)
			grown = true
		}
	}
	if grown {
		s.wantSigned = s.wantSigned || signed
		s.wantsGen++
	}
	return s.wantsGen
}

// wanted is what an answer keeps now, and its generation.
func (s *endpointState) wanted() ([]string, bool, int) {
	s.wantsMu.Lock()
	defer s.wantsMu.Unlock()
	return s.wantClaims, s.wantSigned, s.wantsGen
}

var (
	registryMu sync.Mutex
	registry   = map[string]*endpointState{}
)

// idleStateGrace is how long a state no live instance uses stays in the registry. Traefik
// v3 cancels the ctx given to New for the old configuration before it builds the new one,
// so on a reload the state goes idle and is taken up again a moment later: the grace keeps
// it, with its warm cache, across that gap. A variable for the tests.
var idleStateGrace = int64(time.Minute)

// sharedState returns the state for key, creating it with newClient on first use, and
// counts the instance built with ctx as its user until ctx ends. It takes the latest
// cacheSize and maxCalls, so a reload that changes them takes effect.
func sharedState(ctx context.Context, key string, cacheSize, maxCalls int, newClient func() *http.Client) *endpointState {
	registryMu.Lock()
	defer registryMu.Unlock()
	freeIdle()
	state, ok := registry[key]
	if !ok {
		state = &endpointState{client: newClient(), cache: newCache(cacheSize), flight: newFlight()}
		registry[key] = state
	}
	state.users++
	state.cache.resize(cacheSize)
	state.flight.setLimit(maxCalls)
	// Traefik v2 never cancels ctx: its states stay, as they always did.
	context.AfterFunc(ctx, func() { release(state) })
	return state
}

// release ends one instance's use of state. The instance may still serve requests that
// Traefik routed to it before the new configuration: they keep the state through their
// middleware, which the registry only stops handing out.
func release(state *endpointState) {
	registryMu.Lock()
	defer registryMu.Unlock()
	state.users--
	if state.users == 0 {
		state.idleSince = int64(time.Since(monoEpoch))
		// Freed even if no New or release comes after the grace.
		time.AfterFunc(time.Duration(idleStateGrace), func() {
			registryMu.Lock()
			defer registryMu.Unlock()
			freeIdle()
		})
	}
	freeIdle()
}

// freeIdle removes the states idle for longer than idleStateGrace, and closes their idle
// connections. The caller holds registryMu.
func freeIdle() {
	now := int64(time.Since(monoEpoch))
	for key, state := range registry {
		if state.users == 0 && now-state.idleSince >= idleStateGrace {
			delete(registry, key)
			state.client.CloseIdleConnections()
		}
	}
}

// maxEntryBytes bounds what one cached answer holds, as entrySize counts it: cacheSize of
// them is the most the cache holds. An answer over it is used for its request and not kept.
const maxEntryBytes = 16 << 10

// entry is one remembered answer; only its used flag, its verdicts and its slot change once
// it is stored. storedAt lets each instance sharing the cache apply its own cacheTTL;
// deadline is when the entry goes. Times are the request path's monotonic now (see
// monoEpoch), in nanoseconds: comparing integers is one interpreted step under yaegi, where
// each time.Time method is a call.
type entry struct {
	key      string
	res      *result
	wants    int // the generation of the state's wants res was reduced under
	storedAt int64
	deadline int64
	slot     int         // its place on the clock, guarded by the cache's mu
	used     atomic.Bool // read since the clock's hand last passed
	verdicts sync.Map    // *middleware → *verdict: each route's judgement of res
}

// forgetVerdicts drops the routes' verdicts on e and reports whether there were any. A
// verdict is kept only once e was used again after it was stored, so it marks use as the
// used flag does, without a write on every hit: the hand's second chance forgets it, and
// the next request for the token judges it again from e, which marks e used.
func (e *entry) forgetVerdicts() bool {
	judged := false
	// Named parameters: yaegi v0.16.1 panics calling a func literal with unnamed ones.
	e.verdicts.Range(func(route, v interface{}) bool {
		e.verdicts.Delete(route)
		judged = true
		return true
	})
	return judged
}

// entrySize is about what an entry holds in memory: its strings and a fixed share for the
// structures around them.
func entrySize(key string, res *result) int {
	size := 512 + len(key) + len(res.iss) + len(res.signed)
	for _, aud := range res.aud {
		size += 16 + len(aud)
	}
	for scope := range res.scopes {
		size += 32 + len(scope)
	}
	for name, value := range res.claims {
		size += 48 + len(name) + len(value)
	}
	return size
}

// cache maps keys (hashes, never tokens) to at most capacity entries. A read takes no lock:
// it is one sync.Map load, compiled code even under yaegi, and a flag. A store evicts by the
// CLOCK algorithm, an approximation of least recently used that needs nothing else from
// reads: the hand sweeps the slots, gives a used entry a second chance by clearing its flag,
// and evicts the first entry that is unused or expired. There is no expiry goroutine (Traefik
// v2 never cancels the ctx it gives New): expired entries are skipped, then swept.
type cache struct {
	entries  sync.Map   // key → *entry
	mu       sync.Mutex // serialises stores
	slots    []*entry   // grown as entries come, up to capacity: a large cacheSize costs nothing until used
	capacity int
	hand     int
}

func newCache(capacity int) *cache {
	return &cache{capacity: capacity}
}

// get returns the entry for key that is live at now, or nil.
func (c *cache) get(key string, now int64) *entry {
	v, ok := c.entries.Load(key)
	if !ok {
		return nil
	}
	e := v.(*entry)
	if now >= e.deadline {
		return nil
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// put stores e in the slot of the entry it replaces, in a new slot while there is room, or
// in the one the hand frees.
func (c *cache) put(e *entry, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries.Load(e.key); ok {
		e.slot = v.(*entry).slot
		c.slots[e.slot] = e
	} else if len(c.slots) < c.capacity {
		e.slot = len(c.slots)
		c.slots = append(c.slots, e)
	} else {
		e.slot = c.sweep(now)
		c.slots[e.slot] = e
	}
	c.entries.Store(e.key, e)
}

// sweep moves the hand over the full slots to the first entry that is expired or was not
// used since the hand last passed it, and evicts it. It stops within two turns: the first
// clears what marks use.
func (c *cache) sweep(now int64) int {
	for {
		slot := c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		e := c.slots[slot]
		// Separate statements: both marks must be cleared, whatever the first says.
		used := e.used.Swap(false)
		if judged := e.forgetVerdicts(); now < e.deadline && (used || judged) {
			continue
		}
		c.entries.Delete(e.key)
		c.slots[slot] = nil
		return slot
	}
}

// resize changes the capacity, keeping the entries stored last: walking back from the hand
// meets them first.
func (c *cache) resize(capacity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if capacity == c.capacity {
		return
	}
	var slots []*entry
	for i := 1; i <= len(c.slots); i++ {
		e := c.slots[(c.hand-i+len(c.slots))%len(c.slots)]
		if len(slots) == capacity {
			c.entries.Delete(e.key)
			continue
		}
		e.slot = len(slots)
		slots = append(slots, e)
	}
	c.slots = slots
	c.capacity = capacity
	c.hand = 0
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}

var (
	// errLeaderFailed is what waiters see if the call they waited on ended without a result.
	errLeaderFailed = errors.New("the introspection call this request waited for did not finish")
	// errLeft is what a waiter gets when its own request ends first: the client left,
	// which says nothing about the endpoint.
	errLeft = errors.New("the request ended while it waited for the introspection call")
	// errBusy answers a new token at once while the bound is reached: queued, its request
	// would hold memory and a socket until timeout, and a flood of random tokens against a
	// slow endpoint would pile them up (OWASP API4:2023).
	errBusy = errors.New("maxConcurrentIntrospections calls are already in flight: not calling")
)

// call is one introspection in flight. Each request waiting on it has its own channel,
// woken when the call ends or when the request itself ends.
type call struct {
	e       *entry
	err     error
	done    bool
	waiters []chan struct{}
}

// flight makes concurrent requests for one uncached token share one introspection call
// (lua-resty-openidc #573: a burst of new tokens must not become a burst of calls), and
// bounds the calls in flight, which are one per token.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
	limit int
}

func newFlight() *flight {
	return &flight{calls: map[string]*call{}}
}

func (f *flight) setLimit(limit int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
}

// do runs fn once for all concurrent callers with the same key, unless limit calls are in
// flight already. A waiter whose own request ends stops waiting; the call goes on for the
// others. Waiters take no share of the limit.
//
// No select: yaegi v0.16.1 keeps one array of cases per select statement, shared by every
// goroutine running it (interp/run.go _select), so under load a waiter could wake on another
// call's channel and read a result that is not there yet. Each waiter has a channel instead.
func (f *flight) do(ctx context.Context, key string, fn func() (*entry, error)) (*entry, error) {
	f.mu.Lock()
	c, ok := f.calls[key]
	if ok {
		// Room for both wake-ups: the call's end and the request's end.
		wake := make(chan struct{}, 2)
		c.waiters = append(c.waiters, wake)
		f.mu.Unlock()
		return f.wait(ctx, c, wake)
	}
	if len(f.calls) >= f.limit {
		f.mu.Unlock()
		return nil, errBusy
	}
	c = &call{err: errLeaderFailed}
	f.calls[key] = c
	f.mu.Unlock()
	// The waiters are woken even if fn panics: they would block forever.
	defer f.finish(key, c)
	c.e, c.err = fn()
	return c.e, c.err
}

// finish ends the call for key and wakes its waiters.
func (f *flight) finish(key string, c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.calls, key)
	c.done = true
	// An index, not range: yaegi v0.16.1 cannot range over a slice of channels.
	for i := 0; i < len(c.waiters); i++ {
		c.waiters[i] <- struct{}{}
	}
}

// wait returns the call's result once it ends, or the request's error if that ends first.
func (f *flight) wait(ctx context.Context, c *call, wake chan struct{}) (*entry, error) {
	stop := context.AfterFunc(ctx, func() { wake <- struct{}{} })
	<-wake
	stop()
	f.mu.Lock()
	done := c.done
	f.mu.Unlock()
	if !done {
		return nil, errLeft
	}
	return c.e, c.err
}
