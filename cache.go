package introspection

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// endpointState is what all middleware instances calling one endpoint as one client share.
// Traefik calls New once per router, per chain use and again on every configuration
// reload, so this registry is what lets a new router or a reload start with a warm cache,
// open keep-alive connections and one in-flight call per token. It lives as long as the
// process; it holds one entry per distinct endpoint, client and TLS setting.
type endpointState struct {
	client *http.Client
	cache  *cache
	flight *flight
}

var (
	registryMu sync.Mutex
	registry   = map[string]*endpointState{}
)

// sharedState returns the state for key, creating it with newClient on first use. The
// cache takes the latest cacheSize, so a reload that changes it takes effect.
func sharedState(key string, cacheSize int, newClient func() *http.Client) *endpointState {
	registryMu.Lock()
	defer registryMu.Unlock()
	state, ok := registry[key]
	if !ok {
		state = &endpointState{client: newClient(), cache: newCache(cacheSize), flight: newFlight()}
		registry[key] = state
	}
	state.cache.resize(cacheSize)
	return state
}

// entry is one remembered answer; entries are never changed once stored. storedAt lets
// each instance sharing the cache apply its own cacheTTL; deadline is when the entry goes.
type entry struct {
	key      string
	res      *result
	storedAt time.Time
	deadline time.Time
}

// cache is a least-recently-used map of keys (hashes, never tokens) to entries. Expiry is
// lazy: no goroutine per New (Traefik v2 never cancels the ctx it gives New).
type cache struct {
	mu       sync.Mutex
	capacity int
	items    map[string]*list.Element
	order    *list.List // front: most recently used
}

func newCache(capacity int) *cache {
	return &cache{capacity: capacity, items: map[string]*list.Element{}, order: list.New()}
}

// get returns the live entry for key, or nil.
func (c *cache) get(key string, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	element, ok := c.items[key]
	if !ok {
		return nil
	}
	e := element.Value.(*entry)
	if !now.Before(e.deadline) {
		c.order.Remove(element)
		delete(c.items, key)
		return nil
	}
	c.order.MoveToFront(element)
	return e
}

// put stores e, pushing out the least recently used entries beyond capacity.
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if element, ok := c.items[e.key]; ok {
		element.Value = e
		c.order.MoveToFront(element)
		return
	}
	c.items[e.key] = c.order.PushFront(e)
	c.evict()
}

func (c *cache) resize(capacity int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capacity = capacity
	c.evict()
}

func (c *cache) evict() {
	for c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// errLeaderFailed is what waiters see if the call they waited on ended without a result.
var errLeaderFailed = errors.New("the introspection call this request waited for did not finish")

// call is one introspection in flight. Each request waiting on it has its own channel,
// woken when the call ends or when the request itself ends.
type call struct {
	res     *result
	err     error
	done    bool
	waiters []chan struct{}
}

// flight makes concurrent requests for one uncached token share one introspection call
// (lua-resty-openidc #573: a burst of new tokens must not become a burst of calls).
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

func newFlight() *flight {
	return &flight{calls: map[string]*call{}}
}

// do runs fn once for all concurrent callers with the same key. A waiter whose own
// request ends stops waiting; the call goes on for the others.
//
// No select: yaegi v0.16.1 keeps one array of cases per select statement, shared by every
// goroutine running it (interp/run.go _select), so under load a waiter could wake on another
// call's channel and read a result that is not there yet. Each waiter has a channel instead.
func (f *flight) do(ctx context.Context, key string, fn func() (*result, error)) (*result, error) {
	f.mu.Lock()
	c, ok := f.calls[key]
	if ok {
		// Room for both wake-ups: the call's end and the request's end.
		wake := make(chan struct{}, 2)
		c.waiters = append(c.waiters, wake)
		f.mu.Unlock()
		return f.wait(ctx, c, wake)
	}
	c = &call{err: errLeaderFailed}
	f.calls[key] = c
	f.mu.Unlock()
	f.lead(key, c, fn)
	return c.res, c.err
}

// lead makes the call, then wakes its waiters, even if fn panics: they would block forever.
func (f *flight) lead(key string, c *call, fn func() (*result, error)) {
	defer f.finish(key, c)
	c.res, c.err = fn()
}

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
func (f *flight) wait(ctx context.Context, c *call, wake chan struct{}) (*result, error) {
	stop := context.AfterFunc(ctx, func() { wake <- struct{}{} })
	<-wake
	stop()
	f.mu.Lock()
	done := c.done
	f.mu.Unlock()
	if !done {
		return nil, ctx.Err()
	}
	return c.res, c.err
}
