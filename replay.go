// The memory of the DPoP proofs admitted in this process (RFC 9449 §11.1), which refuses a
// proof's replay within the window any instance accepts it in.

package introspection

import (
	"math"
	"sync"
)

// proofsSeen remembers the jtis of the proofs admitted in this process, for every instance:
// a proof names one URL and is good for dpopProofMaxAge, so a replay is refused wherever
// it is sent. Package-level: Traefik builds instances per router and reload.
var proofsSeen = newReplayMemory(100000)

// replayMemory holds each admitted proof until its iat is too old for any instance to
// accept it (iat plus the longest dpopProofMaxAge any instance has had), at most capacity
// of them. When it is full it forgets the oldest and raises that proof's key's floor to its
// iat: a proof by that key issued at or before the floor is refused, since its jti may be
// one forgotten. Memory stays bounded and a replay is never admitted; under a flood the
// window a key's proofs are accepted in shrinks, for the keys whose proofs were forgotten
// only, so a client flooding proofs dated ahead raises no floor but its own. Past capacity
// keys with floors, one floor serves every key.
type replayMemory struct {
	mu       sync.Mutex
	seen     map[string]bool // replayKey → admitted
	order    proofQueue      // the admitted proofs, oldest first
	floors   map[string]int64
	raised   proofQueue // one entry per key in floors, oldest first, to forget them
	floor    int64      // every key's, once floors is full
	longest  int64
	capacity int
}

// seenProof is an admitted proof, or in the queue of floors a key's floor.
type seenProof struct {
	key string // replayKey; "" for a floor
	jkt string
	iat int64
}

func newReplayMemory(capacity int) *replayMemory {
	return &replayMemory{seen: map[string]bool{}, floors: map[string]int64{}, floor: math.MinInt64, capacity: capacity}
}

// hold makes the memory keep proofs for maxAge at least: an instance accepts proofs that
// old, and another instance's memory of them must last that long.
func (r *replayMemory) hold(maxAge int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if maxAge > r.longest {
		r.longest = maxAge
	}
}

// first records p at wall and reports whether it is new: false for a replay, or for a
// proof at or before its key's floor.
//
// Its usual path makes no call but the map's: under yaegi each call of ours costs dozens of
// allocations, and this runs on every DPoP request.
func (r *replayMemory) first(p *proof, wall int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	horizon := wall - r.longest
	if order, raised := &r.order, &r.raised; (order.head < len(order.items) && order.items[order.head].iat < horizon) ||
		(raised.head < len(raised.items) && raised.items[raised.head].iat < horizon) {
		r.sweep(horizon)
	}
	if r.seen[p.replayKey] || p.iat <= r.floor {
		return false
	}
	if floor, known := r.floors[p.jkt]; known && p.iat <= floor {
		return false
	}
	if len(r.seen) >= r.capacity {
		oldest := r.order.front()
		r.raise(oldest)
		delete(r.seen, oldest.key)
		r.order.pop()
		if p.iat <= r.floorOf(p.jkt) {
			return false
		}
	}
	r.seen[p.replayKey] = true
	r.order.items = append(r.order.items, seenProof{key: p.replayKey, jkt: p.jkt, iat: p.iat})
	return true
}

// sweep forgets the proofs and floors from before horizon, which no instance accepts any
// more: a few at a time, since after a quiet spell forgetting a full memory at once would
// hold every DPoP request behind the lock. The capacity bound holds meanwhile.
func (r *replayMemory) sweep(horizon int64) {
	for n := 0; n < 64 && r.order.size() > 0 && r.order.front().iat < horizon; n++ {
		delete(r.seen, r.order.front().key)
		r.order.pop()
	}
	for n := 0; n < 64 && r.raised.size() > 0 && r.raised.front().iat < horizon; n++ {
		f := r.raised.front()
		r.raised.pop()
		if floor := r.floors[f.jkt]; floor > f.iat {
			r.raised.push(seenProof{jkt: f.jkt, iat: floor}) // raised since: forgotten later
		} else {
			delete(r.floors, f.jkt)
		}
	}
}

// raise refuses from now on the proofs of s's key issued at or before s, which is forgotten.
func (r *replayMemory) raise(s seenProof) {
	floor, known := r.floors[s.jkt]
	switch {
	case known && floor >= s.iat:
	case known:
		r.floors[s.jkt] = s.iat
	case len(r.floors) >= r.capacity:
		if s.iat > r.floor {
			r.floor = s.iat
		}
	default:
		r.floors[s.jkt] = s.iat
		r.raised.push(seenProof{jkt: s.jkt, iat: s.iat})
	}
}

// floorOf is the iat at or before which jkt's proofs are refused.
func (r *replayMemory) floorOf(jkt string) int64 {
	if floor, known := r.floors[jkt]; known && floor > r.floor {
		return floor
	}
	return r.floor
}

// proofQueue is a queue of proofs, its slice moved down when half of it is gone.
type proofQueue struct {
	items []seenProof
	head  int
}

func (q *proofQueue) size() int           { return len(q.items) - q.head }
func (q *proofQueue) front() seenProof    { return q.items[q.head] }
func (q *proofQueue) push(item seenProof) { q.items = append(q.items, item) }

func (q *proofQueue) pop() {
	q.items[q.head] = seenProof{}
	q.head++
	if q.head > 1024 && q.head > len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		q.items = q.items[:n]
		q.head = 0
	}
}
