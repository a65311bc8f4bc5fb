// Package introspection is a Traefik middleware that admits a request only when its
// bearer token is active at an OAuth2 token introspection endpoint (RFC 7662) and
// satisfies the route's policy, and otherwise answers as RFC 6750 §3 says.
package introspection

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// middleware is one configured instance, everything parsed once in New.
type middleware struct {
	next http.Handler
	name string

	tokenHeader          string       // canonical; "" when off
	bearerScheme         bool         // tokenHeader is Authorization
	bearerOnly           bool         // and there is no other source: extract's fast path
	tokenQuery           *queryToken  // nil when off
	tokenCookie          *cookieToken // nil when off
	maxTokenLength       int
	skipPreflight        bool
	forwardAuthorization bool
	optional             bool   // a request without a token passes, anonymous
	forwardJWT           string // canonical forwardIntrospectionJWT; "" when off

	// Durations in nanoseconds, as int64 like the times they are compared with: under yaegi
	// each time.Time or time.Duration method is a call, integer arithmetic is not.
	clockSkew    int64
	staleIfError int64
	// How long this instance reuses a result, by its kind: negativeCacheTTL for inactive,
	// cacheTTL for active. RFC 7662 §4 lets a cache trade freshness (the revocation window)
	// for load.
	ttls [2]int64

	requiredScopes []string
	missingScopes  []*rejection // one per required scope, whose reason names it
	claims         *claimsRule  // nil when there is no rule
	audiences      []string
	issuers        []string
	forwardHeaders []forwardHeader
	// The inbound headers to delete: every spelling a client can send of the forwardHeaders
	// and forwardIntrospectionJWT, and of the tokenHeader other than its own.
	spoofed []string
	edits   bool // a request that goes on may change: spoofed, forwardHeaders, forwardIntrospectionJWT or forwardAuthorization false

	challenge      string // `Bearer realm="..."`; "" when dpop is required
	scopeAttribute string // `, scope="..."` for insufficient_scope; "" without requiredScopes
	describe       bool   // errorDescription
	// resourceMetadata (metadata.go): `, resource_metadata="<the document's URL>"` for
	// every challenge; "" when off.
	metadataAttribute string
	rejections        *rejectionLog // logRejections; nil when off

	// Sender-constrained tokens (binding.go, dpop.go).
	dpopScheme   bool // Authorization: DPoP is accepted
	dpopRequired bool
	certRequired bool
	proofMaxAge  int64   // dpopProofMaxAge, in nanoseconds
	nonces       *nonces // dpopNonce; nil when off
	dpopAlgs     string  // the DPoP challenge's `algs="..."`; "" when the DPoP scheme is not accepted

	introspector *introspector
	state        *endpointState
	wants        int // the generation of state's wants that holds what this instance reads
	// "\x00" and wants: what resolve adds to a token's key in the single flight, so that
	// a call is shared only by instances of one generation.
	flightGeneration string
	now              func() time.Time
}

// New checks the configuration and builds the middleware. It makes no network call.
// Errors name the key and the bad value, never a secret.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, errors.New("no configuration given")
	}
	m := &middleware{
		next:                 next,
		name:                 name,
		maxTokenLength:       config.MaxTokenLength,
		skipPreflight:        config.SkipPreflight,
		forwardAuthorization: config.ForwardAuthorization,
		optional:             config.Optional,
		describe:             config.ErrorDescription,
		audiences:            cleanList(config.Audiences),
		issuers:              cleanList(config.Issuers),
		now:                  time.Now,
	}
	endpoint, discovery, err := parseEndpoint(config)
	if err != nil {
		return nil, err
	}
	timeout, err := m.setDurations(config)
	if err != nil {
		return nil, err
	}
	if err := checkLimits(config); err != nil {
		return nil, err
	}
	if err := m.setTokenSources(config); err != nil {
		return nil, err
	}
	if err := m.setPolicy(config); err != nil {
		return nil, err
	}
	if err := m.setForwarding(config); err != nil {
		return nil, err
	}
	secret, err := clientSecret(config)
	if err != nil {
		return nil, err
	}
	if err := m.setBinding(config, secret); err != nil {
		return nil, err
	}
	metadata, err := m.setMetadata(config)
	if err != nil {
		return nil, err
	}
	if config.LogRejections {
		m.rejections = rejectionLogFor(name)
	}
	tlsConfig, tlsDigest, err := transportTLS(config, endpoint.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tier, tierIdentity, err := readSharedCache(config)
	if err != nil {
		return nil, err
	}
	if m.introspector, err = newIntrospector(config, endpoint, discovery, secret, timeout, m.clockSkew, m.issuers); err != nil {
		return nil, err
	}
	m.share(ctx, config, tlsConfig, tlsDigest, tier, tierIdentity)
	if metadata != nil {
		metadata.next = m
		return metadata, nil
	}
	return m, nil
}

// setPolicy reads what this route demands beyond an active token (the required scopes and
// the claims rule; the audiences and issuers are read with the instance) and builds the
// challenges that say so.
func (m *middleware) setPolicy(config *Config) error {
	if len(m.issuers) == 0 && config.Issuer != "" {
		m.issuers = []string{config.Issuer} // a discovered server's tokens are its own
	}
	// Only ever searched: sorted, so that the sharing key does not depend on their order.
	sort.Strings(m.issuers)
	if !isQuotable(config.Realm) {
		return fmt.Errorf("realm %q has characters a WWW-Authenticate quoted string cannot carry", config.Realm)
	}
	m.challenge = `Bearer realm="` + config.Realm + `"`
	for _, s := range cleanList(config.RequiredScopes) {
		// A list item may be "read write": scopes are separated by SP (RFC 6749 §3.3), and
		// only by SP; any other space is in a scope, and isQuotable refuses it.
		for _, scope := range strings.Split(s, " ") {
			if scope == "" {
				continue
			}
			if !isQuotable(scope) {
				return fmt.Errorf("requiredScopes item %q is not a valid scope", scope)
			}
			m.requiredScopes = append(m.requiredScopes, scope)
			m.missingScopes = append(m.missingScopes, &rejection{http.StatusForbidden, codeInsufficientScope, "missing scope: " + scope})
		}
	}
	if len(m.requiredScopes) > 0 {
		m.scopeAttribute = `, scope="` + strings.Join(m.requiredScopes, " ") + `"`
	}
	var err error
	m.claims, err = parseClaimsRule(config.Claims)
	return err
}

// ServeHTTP runs the request through the steps in order: find this route's verdict on the
// request's token, then answer with the challenge, or remove forged identity headers, set
// the route's and forward. (With resourceMetadata, the document's reads are answered
// before: resourceMetadata.ServeHTTP.)
//
// A verdict is decided once per token and route and kept with the cached answer, so a
// request whose Authorization header holds a bearer token this route has judged finds it
// in two lookups and checks only its window. Any other request, and any request with a
// bound token, takes verdictFor, which reads the token wherever it is, checks its form and
// its proof, decides and checks the binding. The lines here are as few as they
// are on purpose: yaegi v0.16.1 allocates every value a function uses each time it is
// called, so each expression in ServeHTTP costs every request, taken or not.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// A hit needs no check of the token's form: a verdict exists only for a token this route
	// extracted and found well-formed, and the hash is of exactly what follows "Bearer ".
	var v *verdict
	if values := req.Header["Authorization"]; len(values) == 1 && m.bearerOnly {
		if auth := values[0]; len(auth) > len(bearerPrefix) && (auth[:len(bearerPrefix)] == bearerPrefix || strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix)) {
			sum := sha256.Sum256([]byte(auth[len(bearerPrefix):])) // never the token itself (RFC 9700 §4.9.3)
			if found, ok := m.state.cache.entries.Load(string(sum[:])); ok {
				if judged, ok := found.(*entry).verdicts.Load(m); ok {
					now := int64(m.now().Sub(monoEpoch))
					if v = judged.(*verdict); now < v.from || now >= v.until || v.bound {
						v = nil
					}
				}
			}
		}
	}
	if v == nil {
		if v, req = m.verdictFor(rw, req); v == nil {
			return
		}
	}

	if v.rej != nil {
		m.reject(rw, v.rej, v.who, false, 0) // a verdict found for a bearer token
		return
	}
	// Go's server writes every inbound name in its canonical form, so the precomputed
	// spellings are all a client can send: deleting them costs the same whatever the request
	// holds. Inline, not a call: under yaegi a call costs more than these lines do on the
	// routes that skip them.
	if m.edits {
		for i := 0; i < len(m.spoofed); i++ {
			delete(req.Header, m.spoofed[i])
		}
		for i := 0; i < len(v.headers); i++ {
			req.Header[v.headers[i].name] = []string{v.headers[i].value}
		}
		if v.removeToken {
			m.removeToken(req)
		}
	}
	m.next.ServeHTTP(rw, req)
}

// bearerPrefix is how nearly every client writes the scheme; any other spelling takes
// verdictFor, which reads the scheme case-insensitively (RFC 6750 §2.1, RFC 9110 §11.1).
const bearerPrefix = "Bearer "

// verdictFor is the request's verdict found the long way: the token read from wherever the
// configuration says (extract) and its DPoP proof checked (readProof), its answer cached or
// asked for (resolve), judged for this route (judge) and kept with a cached answer for the
// requests that follow, and its binding checked for this request (confirm). A preflight
// (skipPreflight) and a request without a token (optional) pass unchecked, as anonymous. It
// answers the request itself and returns nil when it is refused: before any verdict (a
// missing or malformed token or proof), by the verdict, or because the binding does not
// hold; or when the endpoint fails. The request it returns goes on: with a proof, it
// carries the proof's mark (admittedProof).
func (m *middleware) verdictFor(rw http.ResponseWriter, req *http.Request) (*verdict, *http.Request) {
	token, dpop, rej := m.extract(req)
	t := m.now()
	wall := t.UnixNano()
	if rej == nil && m.dpopRequired && !dpop {
		rej = bearerRefused // a bearer token: whatever its answer, it cannot pass here
	}
	if rej != nil {
		// No token: optional makes an anonymous request, whose identity headers are gone, and
		// skipPreflight lets a CORS preflight through unchecked.
		if rej == noToken && (m.optional || (m.skipPreflight && isPreflight(req))) {
			return anonymous, req
		}
		m.reject(rw, rej, "", dpop, wall)
		return nil, req
	}
	sum := sha256.Sum256([]byte(token))
	var p *proof
	if dpop {
		checked, refused, _ := m.readProof(req, sum[:], wall)
		if refused != nil {
			m.reject(rw, refused, "", true, wall)
			return nil, req
		}
		p = checked
	}
	now := int64(t.Sub(monoEpoch))
	e, err := m.resolve(req.Context(), token, string(sum[:]), now, wall)
	if err != nil {
		// A request that ended while it waited tells nothing about the endpoint.
		if err != errLeft {
			m.state.failures.failed(m.name, "answering 503", err, now)
		}
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return nil, req
	}
	var v *verdict
	if judged, ok := e.verdicts.Load(m); ok {
		v = judged.(*verdict) // a bound token's, or one this request's scheme kept off the fast path
	}
	if v == nil || now < v.from || now >= v.until {
		v = m.judge(e, now, wall)
		// Kept once the answer is used again after it was cached (the lookup marked it): a
		// kept verdict is what tells the cache's hand the entry is in use. Not for an answer
		// reduced before this instance said what it reads (a reload during the call), nor one
		// served stale: its verdict holds for this request only.
		if e.used.Load() && v.until > now && e.wants >= m.wants {
			e.verdicts.Store(m, v)
		}
	}
	if v.rej != nil {
		m.reject(rw, v.rej, v.who, dpop, wall) // here, where the request's scheme is known
		return nil, req
	}
	if v.bound || p != nil {
		if rej := m.confirm(req, v, p, wall); rej != nil {
			m.reject(rw, rej, v.who, dpop, wall)
			return nil, req
		}
		if p != nil && p.renewNonce {
			rw.Header().Set("DPoP-Nonce", m.nonces.issue(wall))
		}
	}
	if p != nil {
		req = req.WithContext(context.WithValue(req.Context(), admittedProof{}, p.replayKey))
	}
	return v, req
}

// isPreflight spots a CORS preflight: browsers send it without credentials (Fetch
// standard, CORS-preflight request), so an OPTIONS request that carries an Authorization
// header, a cookie or a body is not one, and is checked as any other.
func isPreflight(req *http.Request) bool {
	return req.Method == http.MethodOptions && req.Header.Get("Origin") != "" &&
		req.Header.Get("Access-Control-Request-Method") != "" &&
		len(req.Header["Authorization"]) == 0 && len(req.Header["Cookie"]) == 0 && hasNoBody(req)
}

// hasNoBody reports whether a request comes without a body. Over HTTP/3 the length of a
// request without Content-Length is unknown (-1) even when it has none, as a browser's
// preflight has; a body that a backend would read as a form has a Content-Type.
func hasNoBody(req *http.Request) bool {
	return req.ContentLength == 0 || (req.ProtoMajor == 3 && req.ContentLength == -1 && req.Header.Get("Content-Type") == "")
}

// monoEpoch is the origin of the request path's clock: now is m.now().Sub(monoEpoch),
// nanoseconds on the monotonic clock, so that a step of the wall clock moves no cached
// answer's age (a step back would extend every one, revoked ones too). exp, nbf and iat
// are on the wall clock: they are checked against it when an answer is read or judged, and
// what a verdict keeps of them is moved onto this clock. Where both are needed, one reading
// of m.now gives both, in place: under yaegi a helper would cost a call.
var monoEpoch = time.Now()

// A verdict is what one route decided about one cached answer: admitted with these
// identity headers, or refused; it holds for now in [from, until), within the answer's
// freshness for this route and its exp and nbf give or take clockSkew.
type verdict struct {
	from, until int64
	rej         *rejection
	headers     []identityHeader
	removeToken bool // forwardAuthorization is false
	// The token's binding (its answer's cnf), checked on every request by confirm: the
	// thumbprints of the DPoP key (jkt) and of the TLS client certificate (x5t#S256).
	jkt, x5t string
	bound    bool   // either is set: the fast path leaves the request to verdictFor
	who      string // logRejections: the answer's sub and client_id, as the log line shows them
}

// anonymous passes a request without identity; whatever it carries is not a token of ours
// to remove.
var anonymous = &verdict{}

// identityHeader is one header set upstream on an admitted request.
type identityHeader struct {
	name  string
	value string
}

// resolve returns the token's introspection answer: a fresh cached one, or the answer of
// one lookup shared by every request waiting for the same token, in the shared cache
// (sharedCache) and then at the endpoint.
func (m *middleware) resolve(ctx context.Context, token, key string, now, wall int64) (*entry, error) {
	cached := m.state.cache.get(key, now)
	if cached != nil && m.fresh(cached, now) {
		return cached, nil
	}
	// The call is not cancelled when its own client leaves, since others may wait on it and
	// its answer is cached; the timeout still bounds it. It is shared only by instances of
	// this one's generation: one built before it said what it reads (a reload in between)
	// keeps less of the answer, and a claims rule would take a dropped claim for a missing
	// one, which "!" admits.
	callCtx := context.WithoutCancel(ctx)
	e, err := m.state.flight.do(ctx, key+m.flightGeneration, func() (*entry, error) {
		// A call for this token that ended since the lookup above has cached its answer:
		// one call per token, however the herd's requests interleave.
		if again := m.state.cache.get(key, now); again != nil && m.fresh(again, now) {
			return again, nil
		}
		keep, wants := m.state.wanted()
		tier := m.state.tier
		if tier != nil {
			if res, age := tier.get(m.name, token, keep, m.ttls, now, wall); res != nil {
				return m.remember(key, res, wants, age), nil
			}
		}
		res, err := m.introspector.introspect(callCtx, token, now, wall, keep)
		if err != nil {
			return nil, err
		}
		m.state.failures.succeeded(m.name)
		if tier != nil {
			tier.put(m.name, token, res, keep, m.ttls[res.kind], now, wall)
		}
		return m.remember(key, res, wants, 0), nil
	})
	// Stale only when the endpoint failed: errBusy is our own bound, which any client can
	// reach with random tokens while the endpoint is well, and errLeft the client's
	// leaving; and only an answer that keeps what this instance reads.
	if err != nil && err != errBusy && err != errLeft && cached != nil && cached.res.active && cached.wants >= m.wants &&
		now-cached.storedAt < m.ttls[activeKind]+m.staleIfError {
		m.state.failures.failed(m.name, "serving a cached result (staleIfError)", err, now)
		return cached, nil
	}
	return e, err
}

// fresh reports whether this instance may use a live cached answer at now: within its own
// TTL for the answer's kind, and reduced after the instance said what it reads.
func (m *middleware) fresh(e *entry, now int64) bool {
	return now-e.storedAt < m.ttls[e.res.kind] && e.wants >= m.wants
}

// remember caches res, fetched age ns ago (by another replica, when it comes from the
// shared cache), never beyond its cacheUntil (RFC 7662 §4: "MUST NOT be cached beyond" its
// exp), and returns its entry, cached or not: an answer over maxEntryBytes is used once.
func (m *middleware) remember(key string, res *result, wants int, age int64) *entry {
	t := m.now()
	now := int64(t.Sub(monoEpoch))
	wall := t.UnixNano()
	keep := m.ttls[res.kind]
	if res.active {
		keep += m.staleIfError
	}
	e := &entry{key: key, res: res, wants: wants, storedAt: now - age, deadline: now - age + keep}
	if until := addClamped(res.cacheUntil, now-wall); until < e.deadline {
		e.deadline = until
	}
	if e.deadline <= now {
		return e
	}
	if entrySize(key, res) <= maxEntryBytes {
		m.state.cache.put(e, now)
	}
	return e
}

// judge applies what every route checks (an active access token within exp and nbf, give
// or take clockSkew, on the wall clock) and then this route's policy to a cached answer at
// now; the verdict's window is on the monotonic clock.
func (m *middleware) judge(e *entry, now, wall int64) *verdict {
	res := e.res
	v := &verdict{from: math.MinInt64, until: e.deadline, rej: tokenInactive}
	if fresh := e.storedAt + m.ttls[res.kind]; fresh < v.until {
		v.until = fresh
	}
	// Ifs, not a tagless "case a, b:", which yaegi v0.16.1 reads as "case a:".
	if !res.active {
		return v
	}
	if m.rejections != nil {
		v.who = who(res)
	}
	if res.refresh {
		v.rej = notAccessToken
		return v
	}
	// Two statements: yaegi v0.16.1 may leave the second target of a multiple assignment
	// whose first value is a call unset.
	// One sum each, which cannot overflow: clockSkew is at most a year, and now-wall is
	// about minus the Unix time.
	validFrom := addClamped(res.notBefore, now-wall-m.clockSkew)
	validUntil := addClamped(res.notAfter, now-wall+m.clockSkew)
	if now < validFrom {
		if validFrom < v.until {
			v.until = validFrom
		}
		v.rej = tokenNotYetValid
		return v
	}
	if now > validUntil {
		v.from = validUntil + 1
		v.rej = tokenExpired
		return v
	}
	v.from = validFrom
	if validUntil < v.until {
		v.until = validUntil + 1
	}
	if v.rej = m.checkPolicy(res); v.rej != nil {
		return v
	}
	for _, h := range m.forwardHeaders {
		if value, ok := res.claims[h.claim]; ok {
			v.headers = append(v.headers, identityHeader{h.name, value})
		}
	}
	if m.forwardJWT != "" {
		v.headers = append(v.headers, identityHeader{m.forwardJWT, res.signed})
	}
	v.removeToken = !m.forwardAuthorization
	v.jkt = res.jkt
	v.x5t = res.x5t
	v.bound = res.jkt != "" || res.x5t != ""
	return v
}

// addClamped is t+d held within int64: exp and nbf may be absent (the int64 limits) or far off.
func addClamped(t, d int64) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-d:
		return math.MinInt64
	}
	return t + d
}

// checkPolicy applies the route's issuers, audiences, scopes and claims rule to a result.
// Routes sharing the cache may ask for different scopes (Oathkeeper CVE-2021-32701), so it
// runs once per route and answer: a verdict is never shared between routes.
func (m *middleware) checkPolicy(res *result) *rejection {
	// A binding we cannot check, or none where the route demands one (dpop and
	// certificateBound required).
	switch {
	case res.unknownBinding:
		return bindingUnknown
	case m.dpopRequired && res.jkt == "":
		return notDPoPBound
	case m.certRequired && res.x5t == "":
		return notCertificateBound
	case len(m.issuers) > 0 && !contains(m.issuers, res.iss):
		return issuerMismatch
	case len(m.audiences) > 0 && !containsAny(m.audiences, res.aud):
		return audienceMismatch
	}
	for i, scope := range m.requiredScopes {
		if !res.scopes[scope] {
			return m.missingScopes[i]
		}
	}
	if m.claims != nil && !m.claims.holds(res.values) {
		return claimsNotMet
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

func containsAny(list, candidates []string) bool {
	for _, c := range candidates {
		if contains(list, c) {
			return true
		}
	}
	return false
}
