// What the middleware instances share: Traefik builds one per router and per reload, and
// those that call one endpoint the same way share its cache, connections, calls in flight
// and failure log through this registry.

package introspection

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	tier     *sharedTier // sharedCache; nil without
	cache    *cache
	flight   *flight
	failures failureLog
	// issuer: the metadata, read once for all the instances. Guarded by wantsMu.
	discovery *discovery

	// Guarded by registryMu: the instances whose ctx is live, and since when (monotonic
	// ns, like the request path's now) there is none.
	users     int
	idleSince int64

	// What the instances sharing the cache read of an answer beyond the policy's members
	// (keeping). An answer keeps only these (RFC 7662 §5: no more than needed, and a cache
	// bounded in entries stays bounded in bytes). The set only grows; each growth is a new
	// generation, and an entry reduced under an older one is not used by an instance that
	// needs more.
	wantsMu  sync.Mutex
	keep     keeping
	wantsGen int
}

// share takes up the state this instance shares with every other that calls the same
// endpoint the same way, and says what it reads of the answers.
// With a shared cache tier, the state is also the tier's: its entries are named and sealed
// with the sharing key, so that they are shared by the replicas' states of the same name.
func (m *middleware) share(ctx context.Context, config *Config, tlsConfig *tls.Config, tlsDigest string, tier *sharedTier, tierIdentity string) {
	key := m.sharingKey(config, tlsDigest)
	if tier != nil {
		tier.scope = key
		key += "\x00" + tierIdentity
	}
	m.state = sharedState(ctx, key, config.CacheSize, config.MaxConcurrentIntrospections, tier, func() *http.Client {
		return newHTTPClient(tlsConfig, config.MaxConcurrentIntrospections)
	})
	m.introspector.client = m.state.client
	if m.introspector.discovery != nil {
		m.introspector.discovery = m.state.adopt(m.introspector.discovery)
	}
	keep := keeping{claims: make([]string, 0, len(m.forwardHeaders)+2), signed: m.forwardJWT != ""}
	for _, h := range m.forwardHeaders {
		keep.claims = append(keep.claims, h.claim)
	}
	if m.rejections != nil {
		keep.claims = append(keep.claims, "sub", "client_id")
	}
	if m.claims != nil {
		keep.keys = m.claims.keys()
	}
	m.wants = m.state.want(keep)
	m.flightGeneration = "\x00" + strconv.Itoa(m.wants)
}

// sharingKey names the state: answers are shared by everything that asks the same endpoint
// as the same client with the same extra headers (a Host or tenant header can select
// another authorization server behind one URL) and trusts the same answers: a signed one
// is checked when it arrives, with the keys of responseKeysFile (by what the file holds,
// not its name) and against issuers. The connections also depend on how TLS is set up.
// The secret and the private key are left out, so a reload that rotates them starts warm.
func (m *middleware) sharingKey(config *Config, tlsDigest string) string {
	trust := config.ResponseFormat
	if config.ResponseFormat == formatJWT {
		trust += "\x00" + keysDigest(m.introspector.responseKeys) + "\x00" + strings.Join(m.issuers, "\n")
	}
	// One of endpoint and issuer is set; the flag tells them apart.
	return config.Endpoint + config.Issuer + "\x00" + strconv.FormatBool(config.Issuer != "") + "\x00" + config.ClientID + "\x00" + headersKey(config.Headers) + "\x00" +
		trust + "\x00" + strconv.FormatBool(config.SSLVerify) + "\x00" + tlsDigest
}

// headersKey spells the extra headers the same way whatever their order and letter case.
func headersKey(headers map[string]string) string {
	lines := make([]string, 0, len(headers))
	for name, value := range headers {
		lines = append(lines, http.CanonicalHeaderKey(name)+": "+value)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// keysDigest tells apart two sets of response keys by what they are.
func keysDigest(keys []publicKey) string {
	var all []byte
	for _, k := range keys {
		der, _ := x509.MarshalPKIXPublicKey(k.key)
		all = append(all, []byte(k.kid+"\x00"+k.alg+"\x00")...)
		all = append(all, der...)
	}
	return hexDigest(all)
}

func hexDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// adopt returns the state's discovery: d, with the state's client, if it has none yet.
// The instances sharing a state share the issuer, the TLS setup and the response format
// (the sharing key holds them), and so what d reads.
func (s *endpointState) adopt(d *discovery) *discovery {
	s.wantsMu.Lock()
	defer s.wantsMu.Unlock()
	if s.discovery == nil {
		d.client = s.client
		s.discovery = d
	}
	return s.discovery
}

// want adds what one instance reads and returns the generation that holds it. The lists
// are copied on growth: an answer being reduced may hold the old ones.
func (s *endpointState) want(k keeping) int {
	s.wantsMu.Lock()
	defer s.wantsMu.Unlock()
	claims, grownClaims := union(s.keep.claims, k.claims)
	keys, grownKeys := union(s.keep.keys, k.keys)
	if grownClaims || grownKeys || (k.signed && !s.keep.signed) {
		s.keep = keeping{claims: claims, keys: keys, signed: s.keep.signed || k.signed}
		s.wantsGen++
	}
	return s.wantsGen
}

// union is list with the items of more it lacks, and whether it lacked any.
func union(list, more []string) ([]string, bool) {
	grown := false
	for _, item := range more {
		if !contains(list, item) {
			list = append(list[:len(list):len(list)], item)
			grown = true
		}
	}
	return list, grown
}

// wanted is what an answer keeps now, and its generation.
func (s *endpointState) wanted() (keeping, int) {
	s.wantsMu.Lock()
	defer s.wantsMu.Unlock()
	return s.keep, s.wantsGen
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
func sharedState(ctx context.Context, key string, cacheSize, maxCalls int, tier *sharedTier, newClient func() *http.Client) *endpointState {
	registryMu.Lock()
	defer registryMu.Unlock()
	freeIdle()
	state, ok := registry[key]
	if !ok {
		state = &endpointState{client: newClient(), tier: tier, cache: newCache(cacheSize), flight: newFlight()}
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
			if state.tier != nil {
				state.tier.redis.closeIdle()
			}
		}
	}
}

// failureLogInterval spaces the lines failureLog writes about one endpoint.
const failureLogInterval = int64(10 * time.Second)

// failureLog reports an endpoint's failures: the first at once, then at most one line per
// failureLogInterval saying how many requests it stands for, and one line when a call
// succeeds again. An outage under load would otherwise write a line per request.
type failureLog struct {
	mu       sync.Mutex
	requests spacedLog // the requests that failed since the endpoint last answered
}

// failed reports a request whose introspection failed with err, and what it got instead.
func (l *failureLog) failed(name, outcome string, err error, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	failures, due := l.requests.count(now)
	if !due {
		return
	}
	more := ""
	if failures > 1 {
		more = fmt.Sprintf(" (failed requests since the last report: %d)", failures)
	}
	log.Printf("%s: introspection failed, %s: %v%s", name, outcome, err, more)
}

// succeeded reports a call that got an answer, which ends a run of failures.
func (l *failureLog) succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if total := l.requests.reset(); total > 0 {
		log.Printf("%s: introspection works again (failed requests meanwhile: %d)", name, total)
	}
}

// spacedLog counts the events of a run (failures, say) and says when one is due a line: the
// first at once, then at most one per failureLogInterval, standing for those since the last
// line. The caller guards it.
type spacedLog struct {
	lastLine  int64 // the monotonic now of monoEpoch
	sinceLine int
	total     int // since the run began
}

// count counts one event at now and, when it is due a line, how many that line stands for.
func (l *spacedLog) count(now int64) (int, bool) {
	l.total++
	l.sinceLine++
	if l.total > 1 && now-l.lastLine < failureLogInterval {
		return 0, false
	}
	events := l.sinceLine
	l.lastLine = now
	l.sinceLine = 0
	return events, true
}

// reset ends the run and returns how many events it had.
func (l *spacedLog) reset() int {
	total := l.total
	l.total = 0
	l.sinceLine = 0
	return total
}
