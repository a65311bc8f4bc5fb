package e2e_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The shared cache tier (sharedCache, issue 19) through real Traefik v3.6 replicas that
// share one redis-server, against node oidc-provider, whose introspection calls are
// counted: a token costs one call for the whole deployment, whichever replica sees it
// first; what Redis holds reveals neither the token nor a claim; an entry that does not
// open is asked again and overwritten; Redis down costs calls, never a request. Each
// replica has the same dynamic configuration, as a deployment's replicas do.

// The middleware's introspection client, and the client whose tokens the tests send: their
// answers carry a sub and a tenant (oidc-provider's extraTokenClaims), which the replicas
// forward.
const (
	sharedClient = "gw-shared"
	sharedSecret = "gw-shared-secret"
	apiClient    = "svc-shared"
	apiSecret    = "svc-shared-secret"
	apiSub       = "svc-shared-reports"
	apiTenant    = "tenant-shared-7"
	// Another client whose tokens' answers carry another sub and tenant.
	otherClient = "svc-shared-other"
	otherSecret = "svc-shared-other-secret"
	otherSub    = "svc-shared-other-batch"
	otherTenant = "tenant-shared-9"
	// The rediss:// route's client, and the one that reaches that Redis without its password:
	// each its own cache in a replica, so that what they show is Redis's doing.
	tlsClient    = "gw-shared-tls"
	tlsSecret    = "gw-shared-tls-secret"
	nopassClient = "gw-shared-nopass"
	nopassSecret = "gw-shared-nopass-secret"
)

// The mock endpoint's paths beside oidc-provider: every token active, every token inactive,
// every token active until 20 s from now.
const (
	activePath   = "/active"
	inactivePath = "/inactive"
	soonPath     = "/soon"
	soonExp      = 20 * time.Second
)

// The hosts of the dynamic configuration; Dynamic names each middleware after the first
// label (shared-auth@file).
const (
	sharedHost   = "shared.localhost"   // oidc-provider, the shared Redis
	activeHost   = "active.localhost"   // the mock's activePath, the same Redis and key file
	inactiveHost = "inactive.localhost" // the mock's inactivePath, the same Redis and key file
	soonHost     = "soon.localhost"     // the mock's soonPath, the same Redis and key file
	tlsHost      = "tls.localhost"      // oidc-provider, the rediss:// Redis with its password
	nopassHost   = "nopass.localhost"   // the same Redis without the password
)

// sharedDeployment is what the shared cache tests run: oidc-provider, the mock endpoint,
// the backend, a plain Redis and a rediss:// Redis with a password, and three replicas.
type sharedDeployment struct {
	op                *harness.OIDCProvider
	mock              *harness.AuthServer
	mockURL, backend  string
	redis, tlsRedis   *harness.Redis
	ca                *harness.TestCA
	keyFile           string // the replicas' sharedCacheKeyFile
	password          string // tlsRedis's requirepass
	passwordFile      string
	replicas          []*harness.Traefik
	calls             func() int // oidc-provider's introspection calls since last asked
	tokens            []string   // every token sent, for the checks of what Redis holds
	secrets, keyBytes []string   // what no log line may hold
}

// dynamic is the replicas' configuration with sharedCacheKeyFile keyFile.
func (d *sharedDeployment) dynamic(keyFile string) string {
	opEndpoint := d.op.Issuer + harness.OPIntrospectionPath
	demo := func(path string) string {
		return sharedOptions(d.mockURL+path, harness.DemoClientID, harness.DemoClientSecret, d.redis.URL(), keyFile, "")
	}
	return harness.Routes(d.backend, map[string]string{
		sharedHost:   d.sharedRoute(keyFile),
		activeHost:   demo(activePath),
		inactiveHost: demo(inactivePath),
		soonHost:     demo(soonPath),
		tlsHost: sharedOptions(opEndpoint, tlsClient, tlsSecret, d.tlsRedis.URL(), keyFile,
			fmt.Sprintf("sharedCachePasswordFile: %q\nsharedCacheCAFile: %q", d.passwordFile, d.ca.CertFile)),
		nopassHost: sharedOptions(opEndpoint, nopassClient, nopassSecret, d.tlsRedis.URL(), keyFile,
			fmt.Sprintf("sharedCacheCAFile: %q", d.ca.CertFile)),
	})
}

// sharedRoute is sharedHost's options with sharedCacheKeyFile keyFile: oidc-provider as
// sharedClient, the plain Redis.
func (d *sharedDeployment) sharedRoute(keyFile string) string {
	return sharedOptions(d.op.Issuer+harness.OPIntrospectionPath, sharedClient, sharedSecret, d.redis.URL(), keyFile, "")
}

// sharedOptions are a route's options: endpoint as client, the identity headers, the
// cache's lifetimes, and the shared cache at redisURL sealed with keyFile; then more.
func sharedOptions(endpoint, client, secret, redisURL, keyFile, more string) string {
	return fmt.Sprintf("endpoint: %q\nclientId: %s\nclientSecret: %s\n"+
		"forwardHeaders: {X-User: sub, X-Tenant: tenant}\ncacheTTL: 60s\nnegativeCacheTTL: 30s\n"+
		// A round trip far above the default's 50 ms before Redis counts as failed: on a
		// busy machine a slow answer would cost a call and make the counts below vary.
		"sharedCache: %q\nsharedCacheKeyFile: %q\nsharedCacheTimeout: 1s\n%s",
		endpoint, client, secret, redisURL, keyFile, more)
}

// sharedHosts are the hosts every replica routes once it has loaded the configuration.
var sharedHosts = []string{sharedHost, activeHost, inactiveHost, soonHost, tlsHost, nopassHost}

// startSharedDeployment starts everything the tests share, until the test ends.
func startSharedDeployment(t *testing.T) *sharedDeployment {
	t.Helper()
	dir := t.TempDir()
	d := &sharedDeployment{password: "tokengate-e2e-redis-password-5b1f"}
	d.op, d.ca = startOIDCProviderWith(t, dir, harness.OPConfig{
		Clients: []map[string]any{
			{"client_id": sharedClient, "client_secret": sharedSecret},
			{"client_id": tlsClient, "client_secret": tlsSecret},
			{"client_id": nopassClient, "client_secret": nopassSecret},
			{"client_id": apiClient, "client_secret": apiSecret, "scope": harness.OPScopes},
			{"client_id": otherClient, "client_secret": otherSecret, "scope": harness.OPScopes},
		},
		ExtraClaims: map[string]map[string]any{
			apiClient:   {"sub": apiSub, "tenant": apiTenant},
			otherClient: {"sub": otherSub, "tenant": otherTenant},
		},
	})
	d.mock = harness.NewAuthServer(harness.DemoClientID, harness.DemoClientSecret, map[string]harness.Introspection{
		activePath:   {Answer: func() []byte { return demoAnswer(time.Hour) }},
		inactivePath: {Answer: func() []byte { return []byte(`{"active":false}`) }},
		soonPath:     {Answer: func() []byte { return demoAnswer(soonExp) }},
	})
	d.mockURL = serve(t, d.mock)
	d.backend = serve(t, harness.Backend())
	d.redis = startRedis(t, harness.RedisOptions{})
	d.tlsRedis = startRedis(t, harness.RedisOptions{Password: d.password, TLS: d.ca})
	d.keyFile = writeSecret(t, dir, "shared-cache-key", randomHex(t, 32)+"\n")
	d.passwordFile = writeSecret(t, dir, "redis-password", d.password+"\n")
	d.secrets = []string{sharedSecret, tlsSecret, nopassSecret, apiSecret, otherSecret, harness.DemoClientSecret, d.password,
		strings.TrimSpace(readFile(t, d.keyFile))}
	d.replicas = startReplicas(t, 3, d.dynamic(d.keyFile), sharedHosts...)
	d.calls = counter(t, d.op, harness.OPIntrospectionPath)
	return d
}

// demoAnswer is the mock's answer for an active token that expires in ttl.
func demoAnswer(ttl time.Duration) []byte {
	answer, _ := json.Marshal(map[string]any{
		"active": true, "sub": harness.DemoSubject, "client_id": harness.DemoClientID, "scope": "read",
		"tenant": "tenant-demo-3", "exp": time.Now().Add(ttl).Unix(),
	})
	return answer
}

// token asks oidc-provider for a new token of apiClient and remembers it.
func (d *sharedDeployment) token(t *testing.T) string {
	t.Helper()
	token := tokenAs(t, d.op, apiClient, apiSecret, harness.OPScopes, "")
	d.tokens = append(d.tokens, token)
	return token
}

// TestSharedCacheThroughTraefik runs the shared cache tier's behaviour on one deployment, a
// subtest per behaviour, each with tokens of its own (any one runs alone with -run): what
// Redis holds is checked before it is stopped and restarted, last. The plugin logs entries that did not open at
// most once per 10 s per replica, so each subtest that plants one has it read by a replica
// that met none before.
func TestSharedCacheThroughTraefik(t *testing.T) {
	d := startSharedDeployment(t)
	r1, r2, r3 := d.replicas[0], d.replicas[1], d.replicas[2]
	admitted := map[string]string{"X-User": apiSub, "X-Tenant": apiTenant}
	token := d.token(t) // the first subtest's

	t.Run("300 requests over three replicas, one introspection call", func(t *testing.T) {
		before := keySet(t, d.redis)
		d.calls()
		// One at a time, round robin: each replica's first request finds what the one
		// before stored (the single flight is per replica, so concurrent first requests on
		// several replicas may each call).
		for i := 0; i < 300; i++ {
			tr := d.replicas[i%3]
			a := send(t, tr, sharedHost, "/", token)
			assertAdmitted(t, fmt.Sprintf("request %d (replica %d)", i+1, i%3+1), a, admitted)
			if t.Failed() {
				t.FailNow()
			}
		}
		assertCount(t, "introspection calls", d.calls(), 1)
		// The one entry it left: its time to live is within cacheTTL.
		added := newKeys(t, d.redis, before)
		if len(added) != 1 {
			t.Fatalf("Redis has %d new keys, want 1 (the token's): %q", len(added), added)
		}
		assertPTTL(t, d.redis, added[0], 60*time.Second)
	})

	t.Run("a replica started later answers from Redis", func(t *testing.T) {
		// In Redis since the first subtest; sent again in case that one did not run.
		assertAdmitted(t, "replica 1", send(t, r1, sharedHost, "/", token), admitted)
		r4 := startReplicas(t, 1, d.dynamic(d.keyFile), sharedHosts...)[0]
		d.calls()
		assertAdmitted(t, "the fourth replica's first request", send(t, r4, sharedHost, "/", token), admitted)
		assertCount(t, "introspection calls", d.calls(), 0)
		assertLogHoldsNo(t, r4, append(d.secrets, token)...)
	})

	t.Run("an inactive token, refused from Redis too", func(t *testing.T) {
		// oidc-provider answers active: false for a token it never issued.
		const unknown = "tokengate-shared-never-issued-0123456789abcdef"
		d.tokens = append(d.tokens, unknown)
		before := keySet(t, d.redis)
		d.calls()
		invalid := `Bearer realm="traefik", error="invalid_token"`
		assertRefused(t, send(t, r1, sharedHost, "/", unknown), http.StatusUnauthorized, invalid)
		assertCount(t, "replica 1: introspection calls", d.calls(), 1)
		for i, tr := range []*harness.Traefik{r2, r3} {
			assertRefused(t, send(t, tr, sharedHost, "/", unknown), http.StatusUnauthorized, invalid)
			assertCount(t, fmt.Sprintf("replica %d: introspection calls", i+2), d.calls(), 0)
		}
		added := newKeys(t, d.redis, before)
		if len(added) != 1 {
			t.Fatalf("Redis has %d new keys, want 1 (the inactive answer's): %q", len(added), added)
		}
		assertPTTL(t, d.redis, added[0], 30*time.Second) // negativeCacheTTL
	})

	t.Run("another endpoint's entries are its own", func(t *testing.T) {
		// One token, two endpoints that judge it differently, one Redis and one key file:
		// neither route takes the other's answer, on any replica.
		const demoToken = "tokengate-shared-demo-token-42"
		d.tokens = append(d.tokens, demoToken)
		demo := map[string]string{"X-User": harness.DemoSubject, "X-Tenant": "tenant-demo-3"}
		invalid := `Bearer realm="traefik", error="invalid_token"`
		assertAdmitted(t, "replica 1, the active endpoint", send(t, r1, activeHost, "/", demoToken), demo)
		assertRefused(t, send(t, r2, inactiveHost, "/", demoToken), http.StatusUnauthorized, invalid)
		assertCount(t, "the active endpoint's calls", d.mock.Calls(activePath), 1)
		assertCount(t, "the inactive endpoint's calls", d.mock.Calls(inactivePath), 1)
		// Replica 3 has neither in memory: both from Redis, each route its own.
		assertAdmitted(t, "replica 3, the active endpoint", send(t, r3, activeHost, "/", demoToken), demo)
		assertRefused(t, send(t, r3, inactiveHost, "/", demoToken), http.StatusUnauthorized, invalid)
		assertCount(t, "the active endpoint's calls, after replica 3", d.mock.Calls(activePath), 1)
		assertCount(t, "the inactive endpoint's calls, after replica 3", d.mock.Calls(inactivePath), 1)
	})

	t.Run("an entry lives no longer than the token", func(t *testing.T) {
		const soonToken = "tokengate-shared-soon-token-7"
		d.tokens = append(d.tokens, soonToken)
		before := keySet(t, d.redis)
		assertAdmitted(t, "replica 1", send(t, r1, soonHost, "/", soonToken), map[string]string{"X-User": harness.DemoSubject})
		added := newKeys(t, d.redis, before)
		if len(added) != 1 {
			t.Fatalf("Redis has %d new keys, want 1: %q", len(added), added)
		}
		// cacheTTL is 60s, exp 20 s away: the entry goes at exp.
		assertPTTL(t, d.redis, added[0], soonExp)
		assertAdmitted(t, "replica 2", send(t, r2, soonHost, "/", soonToken), map[string]string{"X-User": harness.DemoSubject})
		assertCount(t, "the endpoint's calls", d.mock.Calls(soonPath), 1)
	})

	t.Run("rediss:// with a password file", func(t *testing.T) {
		tlsToken := d.token(t)
		d.calls()
		assertAdmitted(t, "replica 1", send(t, r1, tlsHost, "/", tlsToken), admitted)
		assertCount(t, "replica 1: introspection calls", d.calls(), 1)
		assertAdmitted(t, "replica 2", send(t, r2, tlsHost, "/", tlsToken), admitted)
		assertCount(t, "replica 2: introspection calls", d.calls(), 0)
		keys, err := d.tlsRedis.Keys()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 {
			t.Errorf("the rediss:// Redis has keys %q, want the one entry", keys)
		}

		// Without the password Redis answers NOAUTH: a Redis failure, so the endpoint
		// answers, and nothing is stored.
		nopassToken := d.token(t)
		for i, tr := range []*harness.Traefik{r1, r2} {
			assertAdmitted(t, fmt.Sprintf("replica %d without the password", i+1), send(t, tr, nopassHost, "/", nopassToken), admitted)
			assertCount(t, fmt.Sprintf("replica %d without the password: introspection calls", i+1), d.calls(), 1)
		}
		failed := regexp.MustCompile(`^shared cache ` + regexp.QuoteMeta(d.tlsRedis.Addr) + ` failed, asking the endpoint: .+`)
		if !waitPluginLine(r1, "nopass-auth@file", failed) {
			t.Errorf("replica 1 logged no line of nopass-auth@file matching %q", failed)
		}
		if keys, err := d.tlsRedis.Keys(); err != nil || len(keys) != 1 {
			t.Errorf("the rediss:// Redis has keys %q (%v), want still the one entry", keys, err)
		}
	})

	t.Run("configurations New refuses", func(t *testing.T) {
		// Traefik logs New's error as the router's and answers its own 404 for it.
		dir := t.TempDir()
		shortKey := writeSecret(t, dir, "short-key", strings.Repeat("k", 31))
		base := fmt.Sprintf("endpoint: %q\nclientId: %s\nclientSecret: %s\n",
			d.op.Issuer+harness.OPIntrospectionPath, sharedClient, sharedSecret)
		refused := map[string]string{
			// A password in the URL: New says to use the file, and no line shows it.
			"urlpass.localhost": base + fmt.Sprintf("sharedCache: %q\nsharedCacheKeyFile: %q",
				"redis://:"+d.password+"@"+d.tlsRedis.Addr, d.keyFile),
			"nokey.localhost":    base + fmt.Sprintf("sharedCache: %q", d.redis.URL()),
			"shortkey.localhost": base + fmt.Sprintf("sharedCache: %q\nsharedCacheKeyFile: %q", d.redis.URL(), shortKey),
		}
		routes := map[string]string{sharedHost: d.sharedRoute(d.keyFile)}
		for host, options := range refused {
			routes[host] = options
		}
		tr := startReplicas(t, 1, harness.Routes(d.backend, routes), sharedHost)[0]
		for host := range refused {
			router := strings.SplitN(host, ".", 2)[0]
			if a := send(t, tr, host, "/", ""); a.Status != http.StatusNotFound || a.Seen != nil {
				t.Errorf("%s: got %d (backend reached: %v), want Traefik's 404", host, a.Status, a.Seen != nil)
			}
			if !waitLog(tr, "routerName="+router+"@file", " ERR ", "sharedCache") {
				t.Errorf("traefik log has no error line of router %s@file naming sharedCache", router)
			}
		}
		assertLogHoldsNo(t, tr, d.secrets...)
	})

	t.Run("an entry sealed with another key file is asked again", func(t *testing.T) {
		other := writeSecret(t, t.TempDir(), "other-key", randomHex(t, 32)+"\n")
		d.keyBytes = append(d.keyBytes, strings.TrimSpace(readFile(t, other)))
		stranger := startReplicas(t, 1, harness.Routes(d.backend, map[string]string{
			sharedHost: d.sharedRoute(other),
		}), sharedHost)[0]
		foreign := d.token(t)
		d.calls()
		// Under its own key file the entry has a key of its own: the good replicas do not
		// find it...
		before := keySet(t, d.redis)
		assertAdmitted(t, "the replica with another key file", send(t, stranger, sharedHost, "/", foreign), admitted)
		assertCount(t, "the replica with another key file: introspection calls", d.calls(), 1)
		strangers := newKeys(t, d.redis, before)
		before = keySet(t, d.redis)
		assertAdmitted(t, "replica 1", send(t, r1, sharedHost, "/", foreign), admitted)
		assertCount(t, "replica 1: introspection calls", d.calls(), 1)
		ours := newKeys(t, d.redis, before)
		if len(strangers) != 1 || len(ours) != 1 {
			t.Fatalf("new keys: %q by the replica with another key file, %q by replica 1; want one each", strangers, ours)
		}
		// ...and where they look, the other key file's value does not open.
		value := redisGet(t, d.redis, strangers[0])
		redisSet(t, d.redis, ours[0], value)
		opened := notOpened(r2)
		assertAdmitted(t, "replica 2, the entry sealed with another key file", send(t, r2, sharedHost, "/", foreign), admitted)
		assertCount(t, "replica 2: introspection calls", d.calls(), 1)
		assertNotOpened(t, r2, opened)
		// Replica 2 stored its answer over it.
		if now := redisGet(t, d.redis, ours[0]); bytes.Equal(now, value) {
			t.Error("replica 2 left the value sealed with another key file in place")
		}
		assertAdmitted(t, "replica 3, after replica 2 stored its answer", send(t, r3, sharedHost, "/", foreign), admitted)
		assertCount(t, "replica 3: introspection calls", d.calls(), 0)
		assertLogHoldsNo(t, stranger, append(d.secrets, d.keyBytes...)...)
	})

	t.Run("an altered entry is asked again", func(t *testing.T) {
		altered := d.token(t)
		d.calls()
		before := keySet(t, d.redis)
		assertAdmitted(t, "replica 1", send(t, r1, sharedHost, "/", altered), admitted)
		assertCount(t, "replica 1: introspection calls", d.calls(), 1)
		added := newKeys(t, d.redis, before)
		if len(added) != 1 {
			t.Fatalf("Redis has %d new keys, want 1: %q", len(added), added)
		}
		// One bit of the first ciphertext byte, after the version byte and the 12-byte
		// nonce: the length stays.
		value := redisGet(t, d.redis, added[0])
		if len(value) < 1+12+16 {
			t.Fatalf("the value has %d bytes, fewer than a version byte, a nonce and a GCM tag", len(value))
		}
		value[13] ^= 0x01
		redisSet(t, d.redis, added[0], value)
		opened := notOpened(r3)
		assertAdmitted(t, "replica 3, the altered entry", send(t, r3, sharedHost, "/", altered), admitted)
		assertCount(t, "replica 3: introspection calls", d.calls(), 1)
		assertNotOpened(t, r3, opened)
		assertAdmitted(t, "replica 2, after replica 3 stored its answer", send(t, r2, sharedHost, "/", altered), admitted)
		assertCount(t, "replica 2: introspection calls", d.calls(), 0)
	})

	t.Run("an entry moved to another token's key is asked again", func(t *testing.T) {
		// Whoever can write to Redis but has no key file copies the entry of one token
		// over that of another: the second token must not pass with the first's identity.
		mine := d.token(t)
		theirs := tokenAs(t, d.op, otherClient, otherSecret, harness.OPScopes, "")
		d.tokens = append(d.tokens, theirs)
		d.calls()
		before := keySet(t, d.redis)
		assertAdmitted(t, "replica 2, the first token", send(t, r2, sharedHost, "/", mine), admitted)
		mineKeys := newKeys(t, d.redis, before)
		before = keySet(t, d.redis)
		other := map[string]string{"X-User": otherSub, "X-Tenant": otherTenant}
		assertAdmitted(t, "replica 2, the other client's token", send(t, r2, sharedHost, "/", theirs), other)
		theirKeys := newKeys(t, d.redis, before)
		assertCount(t, "replica 2: introspection calls", d.calls(), 2)
		if len(mineKeys) != 1 || len(theirKeys) != 1 {
			t.Fatalf("new keys: %q for the first token, %q for the other; want one each", mineKeys, theirKeys)
		}
		redisSet(t, d.redis, theirKeys[0], redisGet(t, d.redis, mineKeys[0]))
		opened := notOpened(r1)
		assertAdmitted(t, "replica 1, the other client's token under the first token's entry",
			send(t, r1, sharedHost, "/", theirs), other)
		assertCount(t, "replica 1: introspection calls", d.calls(), 1)
		assertNotOpened(t, r1, opened)
	})

	t.Run("what Redis holds", func(t *testing.T) {
		// One entry in each at least, whatever ran before.
		assertAdmitted(t, "replica 1", send(t, r1, sharedHost, "/", d.token(t)), admitted)
		assertAdmitted(t, "replica 1, rediss://", send(t, r1, tlsHost, "/", d.token(t)), admitted)
		// The claims of the answers: oidc-provider's (with its extraTokenClaims) and the mock's.
		claims := []string{apiSub, apiClient, apiTenant, otherSub, otherClient, otherTenant, harness.OPScopes, d.op.Issuer, harness.OPResource,
			harness.DemoSubject, harness.DemoClientID, "tenant-demo-3"}
		assertOpaque(t, d.redis, d.tokens, claims)
		assertOpaque(t, d.tlsRedis, d.tokens, claims)
	})

	t.Run("Redis stopped mid-run and restarted", func(t *testing.T) {
		// Each replica sends every token once, from its own third of the list on, so that
		// the replicas find each other's entries until Redis stops.
		fresh := make([]string, 30)
		for i := range fresh {
			fresh[i] = d.token(t)
		}
		d.calls()
		var sent atomic.Int64
		var mu sync.Mutex
		var refused []string
		var wg sync.WaitGroup
		for i, tr := range d.replicas[:3] {
			wg.Add(1)
			go func(i int, tr *harness.Traefik) {
				defer wg.Done()
				for j := range fresh {
					a, err := tr.Send(sharedHost, "/", fresh[(j+10*i)%len(fresh)])
					sent.Add(1)
					if err != nil || a.Status != http.StatusNotFound || a.Seen == nil || a.Seen.Headers.Get("X-User") != apiSub {
						mu.Lock()
						refused = append(refused, fmt.Sprintf("replica %d, token %d: %d (backend reached: %v) %v",
							i+1, (j+10*i)%len(fresh), a.Status, a.Seen != nil, err))
						mu.Unlock()
					}
				}
			}(i, tr)
		}
		// A wait for progress, not a timing: Redis stops while the replicas are busy.
		_ = harness.WaitUntil(30*time.Second, 2*time.Millisecond, func() (bool, error) { return sent.Load() >= 20, nil })
		atStop := sent.Load()
		d.redis.Stop()
		wg.Wait()
		if len(refused) > 0 {
			t.Errorf("with Redis stopped mid-run, %d of %d requests were not admitted: %q", len(refused), 3*len(fresh), refused)
		}
		// Each token at least once, at most once per replica.
		n := d.calls()
		if n < len(fresh) || n > 3*len(fresh) {
			t.Errorf("introspection calls = %d, want between %d and %d", n, len(fresh), 3*len(fresh))
		}
		t.Logf("Redis stopped after %d of %d requests; %d introspection calls for %d tokens", atStop, 3*len(fresh), n, len(fresh))

		// Redis down: a new token costs a call on each replica, a token in memory none.
		down := d.token(t)
		for i, tr := range d.replicas[:3] {
			assertAdmitted(t, fmt.Sprintf("replica %d, Redis down", i+1), send(t, tr, sharedHost, "/", down), admitted)
			assertCount(t, fmt.Sprintf("replica %d, Redis down: introspection calls", i+1), d.calls(), 1)
			assertAdmitted(t, fmt.Sprintf("replica %d, Redis down, again", i+1), send(t, tr, sharedHost, "/", down), admitted)
			assertAdmitted(t, fmt.Sprintf("replica %d, Redis down, a token of the run", i+1), send(t, tr, sharedHost, "/", fresh[0]), admitted)
			assertCount(t, fmt.Sprintf("replica %d, Redis down, tokens in memory: introspection calls", i+1), d.calls(), 0)
		}
		failed := regexp.MustCompile(`^shared cache ` + regexp.QuoteMeta(d.redis.Addr) + ` failed, asking the endpoint: .+`)
		for i, tr := range d.replicas[:3] {
			if !waitPluginLine(tr, "shared-auth@file", failed) {
				t.Errorf("replica %d logged no line of shared-auth@file matching %q", i+1, failed)
			}
		}

		// Back, empty: once each replica's back-off (at most 8 s) has passed, a token that
		// replica 1 asked for is answered by replicas 2 and 3 from Redis.
		if err := d.redis.Restart(); err != nil {
			t.Fatal(err)
		}
		rounds := 0
		err := harness.WaitUntil(25*time.Second, 250*time.Millisecond, func() (bool, error) {
			rounds++
			back := d.token(t)
			d.calls()
			for i, tr := range d.replicas[:3] {
				a, err := tr.Send(sharedHost, "/", back)
				if err != nil {
					return false, err
				}
				if a.Status != http.StatusNotFound || a.Seen == nil {
					return false, fmt.Errorf("replica %d, Redis back: got %d (backend reached: %v), want the backend's 404", i+1, a.Status, a.Seen != nil)
				}
			}
			return d.calls() == 1, nil
		})
		if err != nil {
			t.Fatalf("after the restart, after %d rounds, a token still costs more than one call: %v", rounds, err)
		}
		// The plugin adds how many round trips failed meanwhile: "works again (failed
		// round trips meanwhile: 1)".
		works := regexp.MustCompile(`^shared cache ` + regexp.QuoteMeta(d.redis.Addr) + ` works again( \(.+\))?$`)
		for i, tr := range d.replicas[:3] {
			if !waitPluginLine(tr, "shared-auth@file", works) {
				t.Errorf("replica %d logged no line of shared-auth@file matching %q", i+1, works)
			}
		}
	})

	noShow := append(append(slices.Clone(d.secrets), d.keyBytes...), d.tokens...)
	for _, tr := range d.replicas {
		assertLogHoldsNo(t, tr, noShow...)
	}
}

// startReplicas starts n Traefik processes with one dynamic configuration, side by side,
// until the test ends, and returns once each routes every host.
func startReplicas(t *testing.T, n int, dynamic string, hosts ...string) []*harness.Traefik {
	t.Helper()
	bin := peer(t, "TRAEFIK_BIN")
	replicas, errs := make([]*harness.Traefik, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range replicas {
		dir := t.TempDir()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			replicas[i], errs[i] = harness.StartTraefik(bin, dir, dynamic)
		}(i)
	}
	wg.Wait()
	for i, tr := range replicas {
		if tr == nil {
			continue
		}
		t.Cleanup(func() {
			tr.Stop()
			if t.Failed() {
				t.Logf("replica %d's traefik log:\n%s", i+1, tr.Logs())
			}
		})
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range replicas {
		for _, host := range hosts {
			waitRouted(t, tr, host)
		}
	}
	return replicas
}

// startRedis runs redis-server until the test ends. Its log is printed if the test fails.
func startRedis(t *testing.T, opts harness.RedisOptions) *harness.Redis {
	t.Helper()
	r, err := harness.StartRedis(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("redis-server log:\n%s", r.Logs())
		}
	})
	return r
}

// notOpenedLine is the plugin's line about entries that did not open, after the
// middleware's name.
var notOpenedLine = regexp.MustCompile(`^shared cache: ([0-9]+) entries did not open \(another sharedCacheKeyFile, or altered\) and were ignored$`)

// notOpened is how many entries tr logged, for shared-auth@file, as not opened.
func notOpened(tr *harness.Traefik) int {
	n := 0
	for _, line := range pluginLines(tr, "shared-auth@file") {
		if m := notOpenedLine.FindStringSubmatch(line); m != nil {
			count, _ := strconv.Atoi(m[1])
			n += count
		}
	}
	return n
}

// assertNotOpened checks that tr logged, for shared-auth@file, one more entry that did not
// open than the before it had logged, waiting for the line up to 15 s.
func assertNotOpened(t *testing.T, tr *harness.Traefik, before int) {
	t.Helper()
	_ = harness.WaitUntil(15*time.Second, 50*time.Millisecond, func() (bool, error) { return notOpened(tr) > before, nil })
	if got := notOpened(tr); got != before+1 {
		t.Errorf("traefik logged %d entries of shared-auth@file that did not open, want %d (lines matching %q)", got, before+1, notOpenedLine)
	}
}

// assertOpaque checks every key and value r holds: each key is tokengate: and 43 base64url
// characters, and is not the plain SHA-256 of a token (anyone who reads Redis could test a
// guess against that); no key or value holds a token or a claim value, in clear, hex or
// base64; each value is a version byte, a 12-byte nonce that no other value has, and at
// least a GCM tag.
func assertOpaque(t *testing.T, r *harness.Redis, tokens, claims []string) {
	t.Helper()
	keys, err := r.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatalf("%s holds no key", r.URL())
	}
	pattern := regexp.MustCompile(`^tokengate:[A-Za-z0-9_-]{43}$`)
	hashed := map[string]bool{}
	for _, token := range tokens {
		sum := sha256.Sum256([]byte(token))
		hashed["tokengate:"+base64.RawURLEncoding.EncodeToString(sum[:])] = true
	}
	var forms []string
	for _, s := range append(slices.Clone(tokens), claims...) {
		forms = append(forms, encodings(s)...)
	}
	nonces := map[string]string{}
	for _, key := range keys {
		if !pattern.MatchString(key) {
			t.Errorf("key %q does not match %s", key, pattern)
		}
		if hashed[key] {
			t.Errorf("key %q is the SHA-256 of a token, not a keyed hash", key)
		}
		value := redisGet(t, r, key)
		for _, f := range forms {
			if strings.Contains(key, f) || bytes.Contains(value, []byte(f)) {
				t.Errorf("the entry %q holds %q", key, f)
			}
		}
		if len(value) < 1+12+16 {
			t.Errorf("the value of %q has %d bytes, fewer than a version byte, a nonce and a GCM tag", key, len(value))
			continue
		}
		nonce := string(value[1:13])
		if other, ok := nonces[nonce]; ok {
			t.Errorf("the values of %q and %q have the same nonce", other, key)
		}
		nonces[nonce] = key
	}
}

// encodings are s and the forms a careless store might hold it in: hex, and base64 in the
// standard and URL alphabets at each of the three alignments s can have inside a longer
// encoding (only the characters that depend on s alone, so a match inside a longer
// encoded string shows).
func encodings(s string) []string {
	forms := []string{s, hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s)))}
	for pad := 0; pad < 3; pad++ {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			e := enc.EncodeToString(append(make([]byte, pad), s...))
			first, end := (8*pad+5)/6, 8*(pad+len(s))/6
			if end-first >= 6 {
				forms = append(forms, e[first:end])
			}
		}
	}
	return forms
}

// assertPTTL checks that key expires within limit, and has not yet.
func assertPTTL(t *testing.T, r *harness.Redis, key string, limit time.Duration) {
	t.Helper()
	ttl, err := r.PTTL(key)
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > limit {
		t.Errorf("%s's time to live is %v, want above 0 and at most %v", key, ttl, limit)
	}
}

// keySet is the keys r holds.
func keySet(t *testing.T, r *harness.Redis) map[string]bool {
	t.Helper()
	keys, err := r.Keys()
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	return set
}

// newKeys are the keys r holds that before does not.
func newKeys(t *testing.T, r *harness.Redis, before map[string]bool) []string {
	t.Helper()
	var added []string
	for k := range keySet(t, r) {
		if !before[k] {
			added = append(added, k)
		}
	}
	return added
}

func redisGet(t *testing.T, r *harness.Redis, key string) []byte {
	t.Helper()
	value, err := r.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if value == nil {
		t.Fatalf("%s has no key %q", r.URL(), key)
	}
	return value
}

func redisSet(t *testing.T, r *harness.Redis, key string, value []byte) {
	t.Helper()
	if err := r.Set(key, value); err != nil {
		t.Fatal(err)
	}
}

// waitPluginLine reports whether the plugin logged a line about middleware that matches
// pattern, waiting for one up to 15 s: Traefik may write it after the client has its answer.
func waitPluginLine(tr *harness.Traefik, middleware string, pattern *regexp.Regexp) bool {
	return harness.WaitUntil(15*time.Second, 50*time.Millisecond, func() (bool, error) {
		return slices.ContainsFunc(pluginLines(tr, middleware), pattern.MatchString), nil
	}) == nil
}

// randomHex is n random bytes in hex: a key file's secret, 2n bytes long.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeSecret writes content to dir/name, readable by its owner only.
func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
