// The single flight: one introspection call per token however many requests wait for it,
// and the bound on the calls in flight.

package introspection

import (
	"context"
	"errors"
	"sync"
)

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
