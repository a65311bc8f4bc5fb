// The shared cache tier (sharedCache): answers kept in Redis or Valkey for every replica of
// a Traefik deployment, so that N replicas ask the endpoint about a token once, not N
// times, and a new replica starts warm. Redis holds nothing a reader can use and nothing a
// writer can forge: an entry's name is an HMAC of the token, its value the reduced answer
// sealed with AES-GCM under a key derived from the secret and the token. Redis is an
// optimisation, never a dependency: whatever it does, the request goes on to the endpoint.

package introspection

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// minSharedKeyBytes is the least sharedCacheKeyFile holds: the secret keys HMAC-SHA256 and
// the AES-256 keys derived with it, so it needs 256 bits.
const minSharedKeyBytes = 32

// sharedVersion is the first byte of every value, before the nonce: a value of another
// layout is not opened.
const sharedVersion = 1

// The back-off after a Redis failure: Redis is skipped for it, doubling on each failure
// that follows, up to the most. Variables for the tests.
var (
	sharedBackoff    = int64(time.Second)
	sharedBackoffMax = int64(8 * time.Second)
)

// sharedTier is the Redis tier of one endpoint state.
type sharedTier struct {
	redis  *redisClient
	secret []byte
	// What the entries' names and keys are derived with beside the token: the state's
	// sharing key, so that two endpoints, clients or trusts never read each other's.
	scope string

	skipUntil atomic.Int64 // monotonic ns: Redis is skipped until then after a failure
	failing   atomic.Bool  // since the last failure, until a round trip works
	mu        sync.Mutex   // guards backoff and the logs
	backoff   int64
	failures  spacedLog // the round trips that failed since Redis last worked
	unopened  spacedLog // the entries that did not open, ever
}

// readSharedCache reads the sharedCache keys: nil without sharedCache, and otherwise the
// tier (which opens no connection until a request needs one) and what tells it apart from
// another tier in the sharing key. Errors name the key, never the secret or the password.
func readSharedCache(config *Config) (*sharedTier, string, error) {
	if config.SharedCache == "" {
		for key, value := range map[string]string{"sharedCacheKeyFile": config.SharedCacheKeyFile,
			"sharedCachePasswordFile": config.SharedCachePasswordFile, "sharedCacheCAFile": config.SharedCacheCAFile} {
			if value != "" {
				return nil, "", fmt.Errorf("%s %q is set without sharedCache", key, value)
			}
		}
		return nil, "", nil
	}
	server, err := parseSharedCache(config.SharedCache)
	if err != nil {
		return nil, "", err
	}
	timeout, err := parseDuration("sharedCacheTimeout", config.SharedCacheTimeout)
	if err != nil {
		return nil, "", err
	}
	if timeout == 0 {
		return nil, "", fmt.Errorf("sharedCacheTimeout %q must be more than 0", config.SharedCacheTimeout)
	}
	server.timeout = timeout
	if config.SharedCacheKeyFile == "" {
		return nil, "", fmt.Errorf("sharedCacheKeyFile is missing: sharedCache needs a secret of at least %d bytes, the same on every replica", minSharedKeyBytes)
	}
	secret, err := readSecretFile("sharedCacheKeyFile", config.SharedCacheKeyFile)
	if err != nil {
		return nil, "", err
	}
	if len(secret) < minSharedKeyBytes {
		return nil, "", fmt.Errorf("sharedCacheKeyFile %q holds %d bytes: it needs at least %d", config.SharedCacheKeyFile, len(secret), minSharedKeyBytes)
	}
	if config.SharedCachePasswordFile != "" {
		if server.password, err = readSecretFile("sharedCachePasswordFile", config.SharedCachePasswordFile); err != nil {
			return nil, "", err
		}
	}
	var ca []byte
	switch {
	case config.SharedCacheCAFile != "" && server.tls == nil:
		return nil, "", fmt.Errorf("sharedCacheCAFile %q is only read with a rediss:// sharedCache", config.SharedCacheCAFile)
	case config.SharedCacheCAFile != "":
		if ca, err = os.ReadFile(config.SharedCacheCAFile); err != nil {
			return nil, "", fmt.Errorf("sharedCacheCAFile %q: %w", config.SharedCacheCAFile, err)
		}
		server.tls.RootCAs = x509.NewCertPool()
		if !server.tls.RootCAs.AppendCertsFromPEM(ca) {
			return nil, "", fmt.Errorf("sharedCacheCAFile %q holds no PEM certificate", config.SharedCacheCAFile)
		}
	}
	tier := &sharedTier{redis: &redisClient{server: server}, secret: []byte(secret), backoff: sharedBackoff}
	identity := hexDigest([]byte(config.SharedCache + "\x00" + timeout.String() + "\x00" + server.password + "\x00" + secret + "\x00" + string(ca)))
	return tier, identity, nil
}

// parseSharedCache reads redis://[user@]host[:port][/db] or rediss://..., port 6379 unless
// given. A password in the URL is refused: Traefik logs the configuration.
func parseSharedCache(raw string) (redisServer, error) {
	var server redisServer
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return server, fmt.Errorf("sharedCache %q is not a redis://host:port or rediss://host:port URL", shownURL(raw))
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return server, fmt.Errorf("sharedCache %q carries a password: put it in sharedCachePasswordFile", shownURL(raw))
	}
	server.user = u.User.Username()
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	server.addr = net.JoinHostPort(u.Hostname(), port)
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if server.db, err = strconv.Atoi(db); err != nil || server.db < 0 {
			return server, fmt.Errorf("sharedCache %q: the database %q is not a number", shownURL(raw), db)
		}
	}
	if u.Scheme == "rediss" {
		server.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	}
	return server, nil
}

// sharedNameLength is the length of every entry's name: "tokengate:" and 32 bytes in
// base64url. getCommand is GET of such a name, but for the name and its CRLF: written
// once, since under yaegi encoding a command costs a loop of calls per lookup.
const sharedNameLength = len("tokengate:") + 43

var getCommand = "*2\r\n$3\r\nGET\r\n$" + strconv.Itoa(sharedNameLength) + "\r\n"

// entryKeys are token's entry name and the cipher that seals it: one HMAC-SHA512 of the
// token under the secret and the scope, whose first half names the entry and whose second
// half is the AES-256 key. The halves of a PRF's output are independent keys (HKDF-Expand's
// first block is the same construction; Go 1.22 has no HKDF), and one HMAC costs a lookup
// half of what two would under yaegi.
func (t *sharedTier) entryKeys(token string) (string, cipher.AEAD) {
	mac := hmac.New(sha512.New, t.secret)
	mac.Write([]byte(t.scope + "\x00" + token))
	sum := mac.Sum(nil)
	block, _ := aes.NewCipher(sum[32:]) // 32 bytes: AES-256 never fails
	gcm, _ := cipher.NewGCM(block)
	return "tokengate:" + base64.RawURLEncoding.EncodeToString(sum[:32]), gcm
}

// sharedRecord is what an entry holds once opened: the reduced answer, when it was fetched
// from the endpoint, and what it was reduced to keep (a reader that needs more asks again).
// Short names: every replica reads them on every miss.
type sharedRecord struct {
	Fetched    int64                  `json:"t"` // Unix ns
	Claims     []string               `json:"kc,omitempty"`
	Keys       []string               `json:"kk,omitempty"`
	Signed     bool                   `json:"ks,omitempty"`
	Active     bool                   `json:"a,omitempty"`
	Refresh    bool                   `json:"r,omitempty"`
	Scopes     []string               `json:"s,omitempty"`
	Aud        []string               `json:"aud,omitempty"`
	Iss        string                 `json:"iss,omitempty"`
	NotAfter   int64                  `json:"exp,omitempty"`
	NotBefore  int64                  `json:"nbf,omitempty"`
	CacheUntil int64                  `json:"cu,omitempty"`
	Headers    map[string]string      `json:"c,omitempty"`
	Values     map[string]sharedValue `json:"v,omitempty"`
	JWT        string                 `json:"jwt,omitempty"`
	JKT        string                 `json:"jkt,omitempty"`
	X5T        string                 `json:"x5t,omitempty"`
	Unknown    bool                   `json:"u,omitempty"`
}

// sharedValue is a claimsValue as it is stored.
type sharedValue struct {
	List  bool     `json:"l,omitempty"`
	Items []string `json:"i"`
}

// record is res as it is stored, fetched at wall and reduced under keep.
func record(res *result, keep keeping, wall int64) *sharedRecord {
	r := &sharedRecord{Fetched: wall, Active: res.active}
	if !res.active {
		return r
	}
	r.Claims, r.Keys, r.Signed = keep.claims, keep.keys, keep.signed
	r.Refresh, r.Aud, r.Iss, r.JWT, r.JKT, r.X5T, r.Unknown = res.refresh, res.aud, res.iss, res.signed, res.jkt, res.x5t, res.unknownBinding
	r.NotAfter, r.NotBefore, r.CacheUntil = res.notAfter, res.notBefore, res.cacheUntil
	r.Headers = res.claims
	for scope := range res.scopes {
		r.Scopes = append(r.Scopes, scope)
	}
	if len(res.values) > 0 {
		r.Values = make(map[string]sharedValue, len(res.values))
		for key, value := range res.values {
			r.Values[key] = sharedValue{List: value.list, Items: value.items}
		}
	}
	return r
}

// result is the answer r holds, if r keeps all that keep names.
func (r *sharedRecord) result(keep keeping) *result {
	if !r.Active {
		return inactiveResult()
	}
	if (keep.signed && !r.Signed) || !includes(r.Claims, keep.claims) || !includes(r.Keys, keep.keys) {
		return nil
	}
	res := &result{kind: activeKind, active: true, scopes: make(map[string]bool, len(r.Scopes)),
		refresh: r.Refresh, aud: r.Aud, iss: r.Iss, signed: r.JWT, jkt: r.JKT, x5t: r.X5T, unknownBinding: r.Unknown,
		notAfter: r.NotAfter, notBefore: r.NotBefore, cacheUntil: r.CacheUntil, claims: r.Headers}
	for _, scope := range r.Scopes {
		res.scopes[scope] = true
	}
	if len(r.Values) > 0 {
		res.values = make(map[string]claimsValue, len(r.Values))
		for key, value := range r.Values {
			res.values[key] = claimsValue{list: value.List, items: value.Items}
		}
	}
	return res
}

// includes reports whether list holds every item of want.
func includes(list, want []string) bool {
	for _, item := range want {
		if !contains(list, item) {
			return false
		}
	}
	return true
}

// get returns token's answer from Redis and how long ago (ns) it was fetched, or nil when
// Redis has none, none that opens, none that keeps what keep names or none fresh for ttls;
// or when Redis fails or is in its back-off.
func (t *sharedTier) get(name, token string, keep keeping, ttls [2]int64, now, wall int64) (*result, int64) {
	if now < t.skipUntil.Load() || (ttls[activeKind] == 0 && ttls[inactiveKind] == 0) {
		return nil, 0
	}
	key, gcm := t.entryKeys(token)
	sealed, found, err := t.redis.send([]byte(getCommand + key + "\r\n"))
	if err != nil {
		t.failed(name, err, now)
		return nil, 0
	}
	if t.failing.Load() {
		t.worked(name)
	}
	if !found {
		return nil, 0
	}
	r := open(gcm, sealed)
	if r == nil {
		t.notOpened(name, now)
		return nil, 0
	}
	res := r.result(keep)
	age := wall - r.Fetched
	if age < 0 {
		age = 0 // a replica's clock ahead of ours: the answer is as fresh as can be
	}
	if res == nil || age >= ttls[res.kind] {
		return nil, 0
	}
	return res, age
}

// put stores res, fetched at wall, for at most ttl and never past its cacheUntil (RFC 7662
// §4). A failure is logged, and the request goes on.
func (t *sharedTier) put(name, token string, res *result, keep keeping, ttl, now, wall int64) {
	if now < t.skipUntil.Load() {
		return
	}
	if until := res.cacheUntil - wall; until < ttl {
		ttl = until
	}
	ms := ttl / int64(time.Millisecond)
	if ms <= 0 {
		return
	}
	plain, err := json.Marshal(record(res, keep, wall))
	if err != nil || len(plain) > maxEntryBytes {
		return // too large to keep here too: remember used it once
	}
	key, gcm := t.entryKeys(token)
	if _, _, err := t.redis.do("SET", key, seal(gcm, plain), "PX", strconv.FormatInt(ms, 10)); err != nil {
		t.failed(name, err, now)
		return
	}
	if t.failing.Load() {
		t.worked(name)
	}
}

// seal is the stored value: the version, a random nonce, and plain sealed with the
// token's cipher. Its key is derived from the token and the scope, as the entry's name is,
// so a value opens under its own name only.
func seal(gcm cipher.AEAD, plain []byte) string {
	value := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plain)+gcm.Overhead())
	value[0] = sharedVersion
	if _, err := rand.Read(value[1:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return string(gcm.Seal(value, value[1:], plain, nil))
}

// open is the record sealed in value, or nil when value was not sealed with the secret and
// this token, or was altered.
func open(gcm cipher.AEAD, value []byte) *sharedRecord {
	if len(value) < 1+gcm.NonceSize()+gcm.Overhead() || value[0] != sharedVersion {
		return nil
	}
	plain, err := gcm.Open(nil, value[1:1+gcm.NonceSize()], value[1+gcm.NonceSize():], nil)
	if err != nil {
		return nil
	}
	r := &sharedRecord{}
	if err := json.Unmarshal(plain, r); err != nil {
		return nil
	}
	return r
}

// failed skips Redis for the back-off, which doubles while failures follow, and logs the
// first failure, then at most one line per failureLogInterval.
func (t *sharedTier) failed(name string, err error, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing.Store(true)
	t.skipUntil.Store(now + t.backoff)
	if t.backoff *= 2; t.backoff > sharedBackoffMax {
		t.backoff = sharedBackoffMax
	}
	if failures, due := t.failures.count(now); due {
		more := ""
		if failures > 1 {
			more = fmt.Sprintf(" (failed round trips since the last report: %d)", failures)
		}
		log.Printf("%s: shared cache %s failed, asking the endpoint: %v%s", name, t.redis.server.addr, err, more)
	}
}

// worked ends a run of failures. Its callers check failing first: a call costs under yaegi.
func (t *sharedTier) worked(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing.Store(false)
	t.backoff = sharedBackoff
	if total := t.failures.reset(); total > 0 {
		log.Printf("%s: shared cache %s works again (failed round trips meanwhile: %d)", name, t.redis.server.addr, total)
	}
}

// notOpened counts an entry that did not open, and logs the first, then at most one line
// per failureLogInterval.
func (t *sharedTier) notOpened(name string, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if entries, due := t.unopened.count(now); due {
		log.Printf("%s: shared cache: %d entries did not open (another sharedCacheKeyFile, or altered) and were ignored", name, entries)
	}
}
