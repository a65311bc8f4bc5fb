// The cache of introspection answers, by token hash, bounded in entries and bytes.

package introspection

import (
	"sync"
	"sync/atomic"
)

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
	size := 512 + len(key) + len(res.iss) + len(res.signed) + len(res.jkt) + len(res.x5t)
	for _, aud := range res.aud {
		size += 16 + len(aud)
	}
	for scope := range res.scopes {
		size += 32 + len(scope)
	}
	for name, value := range res.claims {
		size += 48 + len(name) + len(value)
	}
	for key, value := range res.values {
		size += 64 + len(key)
		for _, item := range value.items {
			size += 16 + len(item)
		}
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
