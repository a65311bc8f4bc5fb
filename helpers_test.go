package introspection

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	gohash "hash"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fixtures more than one test file uses: the endpoint, the backend, the clock, the
// middleware and its requests, the captured log, keys and files, signed answers.

// authServer is an introspection endpoint for tests. It answers each token from answers
// (inactive when unknown), or with fail when that is set, and records every call. An answer
// is claims to encode as JSON, a raw body (a string) or a handler that answers the call.
type authServer struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]interface{}
	fail    http.HandlerFunc
	calls   int64
	last    *http.Request
	form    url.Values
}

// newAuthServer starts an endpoint that knows no token yet; the test's cleanup stops it and
// forgets the states of the middlewares that asked it.
func newAuthServer(t testing.TB) *authServer {
	as := &authServer{answers: map[string]interface{}{}}
	as.Server = httptest.NewServer(http.HandlerFunc(as.serve))
	as.stopAtCleanup(t)
	return as
}

// stopAtCleanup makes the test's cleanup stop the endpoint, once started, and forget the
// states of the middlewares that asked it. A test that starts its endpoint itself (with
// TLS, say) calls it as newAuthServer does.
func (as *authServer) stopAtCleanup(t testing.TB) {
	t.Cleanup(as.Close)
	t.Cleanup(func() { forgetStates(as.URL) })
}

// forgetStates removes from the registry the shared states of the endpoints at url, or
// every state when url is "": a later test's server may get the same port, and must not
// find this one's answers or failures.
func forgetStates(url string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for key := range registry {
		rest := strings.TrimPrefix(key, url)
		if url == "" || (rest != key && len(rest) > 0 && (rest[0] == '/' || rest[0] == '?' || rest[0] == 0)) {
			delete(registry, key)
		}
	}
}

// serve is the endpoint's handler: fail, or the token's answer.
func (as *authServer) serve(rw http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(body))
	atomic.AddInt64(&as.calls, 1)
	as.mu.Lock()
	as.last, as.form = req, form
	answer, ok := as.answers[form.Get("token")]
	fail := as.fail
	as.mu.Unlock()
	if fail != nil {
		fail(rw, req)
		return
	}
	if !ok {
		answer = map[string]interface{}{"active": false}
	}
	if handle, isHandler := answer.(http.HandlerFunc); isHandler {
		handle(rw, req)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	if raw, isRaw := answer.(string); isRaw {
		io.WriteString(rw, raw)
		return
	}
	json.NewEncoder(rw).Encode(answer)
}

// answer sets the endpoint's answer for token.
func (as *authServer) answer(token string, answer interface{}) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.answers[token] = answer
}

// failWith makes fail answer every call instead.
func (as *authServer) failWith(fail http.HandlerFunc) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.fail = fail
}

// activeServer is an endpoint that answers the token "tok" as active, and the
// configuration of a middleware that asks it.
func activeServer(t testing.TB) (*authServer, *Config) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	return as, testConfig(as.URL)
}

// hold makes the endpoint answer every call active, once the returned channel is closed.
func (as *authServer) hold() chan struct{} {
	release := make(chan struct{})
	as.failWith(func(rw http.ResponseWriter, _ *http.Request) {
		<-release
		json.NewEncoder(rw).Encode(activeClaims())
	})
	return release
}

// callCount is the number of calls the endpoint has had.
func (as *authServer) callCount() int {
	return int(atomic.LoadInt64(&as.calls))
}

// lastCall is the endpoint's last request and its form.
func (as *authServer) lastCall() (*http.Request, url.Values) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.last, as.form
}

// activeClaims is a healthy answer for a token with the read and write scopes.
func activeClaims() map[string]interface{} {
	return map[string]interface{}{
		"active":    true,
		"scope":     "read write",
		"sub":       "alice",
		"client_id": "app",
		"iss":       "https://issuer.example",
		"aud":       []string{"api", "other"},
		"exp":       time.Now().Add(time.Hour).Unix(),
		"iat":       time.Now().Unix(),
	}
}

// withClaim is activeClaims with name set to value, or removed when value is nil.
func withClaim(name string, value interface{}) map[string]interface{} {
	claims := activeClaims()
	if value == nil {
		delete(claims, name)
	} else {
		claims[name] = value
	}
	return claims
}

// backend records what reached the next handler.
type backend struct {
	mu       sync.Mutex
	requests []*http.Request
}

func (b *backend) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	b.mu.Lock()
	b.requests = append(b.requests, req)
	b.mu.Unlock()
	rw.WriteHeader(http.StatusOK)
}

// count is the number of requests that reached the backend.
func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

// lastRequest is the last request that reached the backend, nil when none did.
func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		return nil
	}
	return b.requests[len(b.requests)-1]
}

// clock is a settable time for the cache tests: tests count calls, they never sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// now is the clock's time, for middleware.now.
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// advance moves the clock by d.
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testConfig is the default configuration asking endpoint as client traefik, secret s3cret-value.
func testConfig(endpoint string) *Config {
	config := CreateConfig()
	config.Endpoint = endpoint
	config.ClientID = "traefik"
	config.ClientSecret = "s3cret-value"
	return config
}

// newMiddleware builds the middleware for config in front of a fresh backend.
func newMiddleware(t testing.TB, config *Config) (*middleware, *backend) {
	t.Helper()
	handler, next := newHandler(t, config)
	return handler.(*middleware), next
}

// newHandler is New's handler for config in front of a fresh backend: the middleware, or
// with resourceMetadata the document's handler in front of it.
func newHandler(t testing.TB, config *Config) (http.Handler, *backend) {
	t.Helper()
	next := &backend{}
	handler, err := New(context.Background(), next, config, "auth@test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return handler, next
}

// bearer puts token in the request's Authorization header.
func bearer(token string) func(*http.Request) {
	return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }
}

// serve sends m one GET request, as edit changes it and as it arrives off the wire.
func serve(m http.Handler, edit func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil)
	if edit != nil {
		edit(req)
	}
	fromWire(req.Header)
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req)
	return rec
}

// fromWire gives the header's names the canonical form Go's HTTP/1 and HTTP/2 servers give
// every inbound name (textproto.CanonicalMIMEHeaderKey), whatever letter case the client
// sent: what the middleware sees inside Traefik. testSpoofing also sends them over a real
// connection.
func fromWire(h http.Header) {
	var names []string
	for name := range h {
		if http.CanonicalHeaderKey(name) != name {
			names = append(names, name)
		}
	}
	for _, name := range names {
		values := h[name]
		delete(h, name)
		h[http.CanonicalHeaderKey(name)] = append(h[http.CanonicalHeaderKey(name)], values...)
	}
}

// otherSpellings lists the names in h, with their values, that a backend may read as name
// (spoofName folds them together), name itself left out.
func otherSpellings(h http.Header, name string) []string {
	var others []string
	for got, values := range h {
		if got != name && spoofName(got) == spoofName(name) {
			others = append(others, got+"="+strings.Join(values, ","))
		}
	}
	return others
}

// The challenges for realm traefik (testConfig's): no token, a malformed one, a refused one.
const (
	challenge        = `Bearer realm="traefik"`
	challengeRequest = `Bearer realm="traefik", error="invalid_request"`
	challengeToken   = `Bearer realm="traefik", error="invalid_token"`
)

// preflight makes a request a CORS preflight.
func preflight(r *http.Request) {
	r.Method = http.MethodOptions
	r.Header.Set("Origin", "https://app.example")
	r.Header.Set("Access-Control-Request-Method", "POST")
}

// lockedBuffer is the captured log: the plugin logs from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// since returns the lines logged after the log was n bytes long that name the middleware.
func (b *lockedBuffer) since(n int, name string) []string {
	var lines []string
	for _, line := range strings.Split(b.String()[n:], "\n") {
		if strings.Contains(line, name+": ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// waitFor polls until cond holds. Its deadline only keeps a broken build from hanging;
// nothing is timed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// len is how many entries the cache holds.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}

// cacheKeys lists the keys of the cache's map, which its slots bound.
func cacheKeys(m *middleware) []string {
	var keys []string
	// Named parameters: yaegi v0.16.1 panics calling a func literal with unnamed ones.
	m.state.cache.entries.Range(func(key, value interface{}) bool {
		keys = append(keys, key.(string))
		return true
	})
	return keys
}

// waiting counts the requests waiting on calls in flight.
func waiting(m *middleware) int {
	f := m.state.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += len(c.waiters)
	}
	return n
}

// Keys are made once per test binary: a 2048-bit RSA key takes a moment. One value per
// declaration: yaegi v0.16.1 leaves `var a, _ = f()` unset for functions other than tests.
var (
	testRSAKey = mustKey(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey)
	testECKey  = mustKey(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey)
	testEdKey  = newEdKey()
)

// mustKey is key, or a panic when making it failed.
// newEdKey is an Ed25519 private key; one value per declaration: yaegi v0.16.1 reads a
// package-level "var a, _ = f()" as zero in other functions.
func newEdKey() ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return key
}

func mustKey(key interface{}, err error) interface{} {
	if err != nil {
		panic(err)
	}
	return key
}

// writePEM writes der as one PEM block of typ into dir and returns its path.
func writePEM(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes content into a file of the test's temporary directory, returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeJWS splits a compact JWS into its decoded header and claims, its signing input and
// its signature.
func decodeJWS(t *testing.T, jws string) (map[string]interface{}, map[string]interface{}, []byte, []byte) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	var header, claims map[string]interface{}
	for i, into := range []*map[string]interface{}{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, into) != nil {
			t.Fatalf("part %d of the JWS is not base64url JSON: %q", i, parts[i])
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("the signature is not base64url: %v", err)
	}
	return header, claims, []byte(parts[0] + "." + parts[1]), sig
}

// testCert issues a certificate for cn, signed by parent (self-signed when nil).
func testCert(t testing.TB, cn string, parent *tls.Certificate, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IsCA:                  parent == nil,
	}
	signerCert, signerKey := template, interface{}(key)
	if parent != nil {
		signerCert, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writeCertFiles writes a certificate and its key as PEM files for tlsCertFile and tlsKeyFile.
func writeCertFiles(t testing.TB, cert tls.Certificate) (string, string) {
	t.Helper()
	return writePEM(t, "client.pem", "CERTIFICATE", cert.Certificate[0]), privateKeyFile(t, cert.PrivateKey, false)
}

// The authorization server's signing keys, as the tests' responseKeysFile lists them.
const (
	rsaKid = "as-rsa"
	ecKid  = "as-ec"
)

// curveSize is the size in bytes, on each curve, of R and of S in a JWS ECDSA signature
// (RFC 7518 §3.4) and of x and y in a JWK (§6.2.1.2). Spelled out here, apart from jwt.go.
var curveSize = map[string]int{"P-256": 32, "P-384": 48, "P-521": 66}

// privateKeyFile writes key as PEM for privateKeyFile: PKCS #8 when pkcs8 is set, else
// PKCS #1 for RSA and SEC 1 for EC.
func privateKeyFile(t testing.TB, key interface{}, pkcs8 bool) string {
	t.Helper()
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, "pkcs8.pem", "PRIVATE KEY", der)
	}
	if k, ok := key.(*rsa.PrivateKey); ok {
		return writePEM(t, "rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
	}
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "ec.pem", "EC PRIVATE KEY", der)
}

// publicJWK is the public half of key (an *rsa.PrivateKey or *ecdsa.PrivateKey) as a JWK,
// with the members extra beside kty and the key's numbers (`"kid":"a","use":"sig"`, or "").
func publicJWK(key interface{}, extra string) string {
	b64 := base64.RawURLEncoding
	var jwk string
	if k, ok := key.(*rsa.PrivateKey); ok {
		jwk = `{"kty":"RSA","n":"` + b64.EncodeToString(k.N.Bytes()) + `","e":"AQAB"`
	} else {
		k := key.(*ecdsa.PrivateKey)
		name := k.Curve.Params().Name
		size := curveSize[name]
		jwk = `{"kty":"EC","crv":"` + name + `","x":"` + b64.EncodeToString(k.X.FillBytes(make([]byte, size))) +
			`","y":"` + b64.EncodeToString(k.Y.FillBytes(make([]byte, size))) + `"`
	}
	if extra != "" {
		jwk += "," + extra
	}
	return jwk + "}"
}

// publicPEM is the public half of key (an *rsa.PrivateKey or *ecdsa.PrivateKey) as a PEM
// PUBLIC KEY block.
func publicPEM(key interface{}) []byte {
	var public interface{}
	if k, ok := key.(*rsa.PrivateKey); ok {
		public = &k.PublicKey
	} else {
		public = &key.(*ecdsa.PrivateKey).PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// publicKeyFiles writes files for responseKeysFile: a JWK Set of jwks, and the public halves
// of keys as PEM.
func publicKeyFiles(t testing.TB, jwks []string, keys ...interface{}) (string, string) {
	t.Helper()
	var pemKeys []byte
	for i := 0; i < len(keys); i++ {
		pemKeys = append(pemKeys, publicPEM(keys[i])...)
	}
	return writeFile(t, "jwks.json", `{"keys":[`+strings.Join(jwks, ",")+`]}`), writeFile(t, "keys.pem", string(pemKeys))
}

// responseKeyFiles writes the server's public keys as a JWK Set, beside an HMAC key that
// must be skipped and a key for encryption, and as PEM.
func responseKeyFiles(t testing.TB) (string, string) {
	t.Helper()
	return publicKeyFiles(t, []string{
		`{"kty":"oct","kid":"` + rsaKid + `","k":"` + base64.RawURLEncoding.EncodeToString([]byte("a shared secret")) + `"}`,
		publicJWK(testRSAKey, `"kid":"`+rsaKid+`","use":"sig","alg":"RS256"`),
		publicJWK(testECKey, `"kid":"as-enc","use":"enc"`),
		publicJWK(testECKey, `"kid":"`+ecKid+`"`),
	}, testRSAKey, testECKey)
}

func digestOf(hash crypto.Hash, input []byte) []byte {
	h := hash.New()
	h.Write(input)
	return h.Sum(nil)
}

// signAs signs as the family ("RS", "PS", "ES" or "Ed") does with hash and key, with the standard
// library alone: an ECDSA signature is R||S, each big-endian of the curve's size (RFC 7518
// §3.4), made here rather than by jwt.go.
func signAs(family string, hash crypto.Hash, key interface{}) func([]byte) []byte {
	return func(input []byte) []byte {
		if family == "Ed" {
			return ed25519.Sign(key.(ed25519.PrivateKey), input) // EdDSA hashes the input itself
		}
		digest := digestOf(hash, input)
		var sig []byte
		switch family {
		case "RS":
			sig, _ = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), hash, digest)
		case "PS":
			sig, _ = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case "ES":
			k := key.(*ecdsa.PrivateKey)
			size := curveSize[k.Curve.Params().Name]
			r, s, _ := ecdsa.Sign(rand.Reader, k, digest)
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
		return sig
	}
}

// verifiesAs says whether sig is the family's signature ("HS", "RS", "PS", "ES" or "Ed") over
// input with hash by key (HS: the secret, as []byte) or its public half, with the standard
// library alone: an ECDSA one must be R||S, each of the curve's size.
func verifiesAs(family string, hash crypto.Hash, key interface{}, input, sig []byte) bool {
	if family == "HS" {
		mac := hmac.New(func() gohash.Hash { return hash.New() }, key.([]byte))
		mac.Write(input)
		return hmac.Equal(mac.Sum(nil), sig)
	}
	if family == "Ed" {
		return ed25519.Verify(key.(ed25519.PrivateKey).Public().(ed25519.PublicKey), input, sig)
	}
	digest := digestOf(hash, input)
	switch family {
	case "RS":
		return rsa.VerifyPKCS1v15(&key.(*rsa.PrivateKey).PublicKey, hash, digest, sig) == nil
	case "PS":
		return rsa.VerifyPSS(&key.(*rsa.PrivateKey).PublicKey, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "ES":
		k := key.(*ecdsa.PrivateKey)
		size := curveSize[k.Curve.Params().Name]
		return len(sig) == 2*size && ecdsa.Verify(&k.PublicKey, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]))
	}
	return false
}

// jws signs header and claims with sign, or leaves the signature empty when sign is nil.
func jws(header, claims map[string]interface{}, sign func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// signedClaims are the claims of a valid RFC 9701 answer for the client traefik, issued now.
func signedClaims() map[string]interface{} {
	return map[string]interface{}{
		"iss":                 "https://issuer.example",
		"aud":                 "traefik",
		"iat":                 time.Now().Unix(),
		"token_introspection": activeClaims(),
	}
}

// signedAnswer is a valid RFC 9701 answer for the client traefik, signed with the RSA key,
// after edit has changed its header or claims.
func signedAnswer(edit func(header, claims map[string]interface{})) string {
	header := map[string]interface{}{"alg": "RS256", "typ": "token-introspection+jwt", "kid": rsaKid}
	claims := signedClaims()
	if edit != nil {
		edit(header, claims)
	}
	return jws(header, claims, signAs("RS", crypto.SHA256, testRSAKey))
}

// flip changes one byte of part i (0 header, 1 claims, 2 signature) of a JWS, keeping the rest.
func flip(token string, i int) string {
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[i])
	raw[len(raw)/2] ^= 0x01
	parts[i] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// verifiedByServerKeys is the backend's check of a forwarded answer, RS256 or ES256 by the
// server's keys, with the standard library alone.
func verifiedByServerKeys(t *testing.T, token string) map[string]interface{} {
	t.Helper()
	header, claims, input, sig := decodeJWS(t, token)
	alg, _ := header["alg"].(string) // yaegi v0.16.1 cannot switch on an interface{} with string cases
	serverKeys := map[string]interface{}{"RS256": testRSAKey, "ES256": testECKey, "EdDSA": testEdKey}
	key := serverKeys[alg]
	if key == nil || !verifiesAs(alg[:2], crypto.SHA256, key, input, sig) {
		t.Fatalf("the forwarded JWT does not verify with the server's public key")
	}
	return claims
}

// dpopKey is a DPoP client's key pair: the proofs it signs carry its public JWK.
type dpopKey struct {
	alg  string
	sign func([]byte) []byte
	jwk  map[string]interface{}
}

// newDPoPKey makes a key for alg (ES256, ES384, ES512, RS*, PS* or EdDSA); the RSA ones
// share testRSAKey, which takes long to make.
func newDPoPKey(t testing.TB, alg string) *dpopKey {
	t.Helper()
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	curves := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}
	k := &dpopKey{alg: alg}
	var public string
	switch family := alg[:2]; family {
	case "ES":
		key := mustKey(ecdsa.GenerateKey(curves[alg], rand.Reader)).(*ecdsa.PrivateKey)
		k.sign = signAs(family, hashes[alg[2:]], key) // one assignment each: yaegi v0.16.1 sets only a call's target
		public = publicJWK(key, "")
	case "RS", "PS":
		k.sign = signAs(family, hashes[alg[2:]], testRSAKey)
		public = publicJWK(testRSAKey, "")
	default:
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.sign = signAs("Ed", 0, key)
		public = `{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	}
	if err := json.Unmarshal([]byte(public), &k.jwk); err != nil {
		t.Fatal(err)
	}
	return k
}

// thumbprint is the key's RFC 7638 thumbprint, the cnf.jkt of the tokens bound to it:
// the required members only, which json.Marshal writes sorted and without spaces.
func (k *dpopKey) thumbprint() string {
	required := map[string][]string{"RSA": {"e", "kty", "n"}, "EC": {"crv", "kty", "x", "y"}, "OKP": {"crv", "kty", "x"}}
	members := map[string]interface{}{}
	for _, name := range required[k.jwk["kty"].(string)] {
		members[name] = k.jwk[name]
	}
	canonical, _ := json.Marshal(members)
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proof is a DPoP proof by k for a GET of serve's URL with token, issued now, as edit
// changes its header and claims.
func (k *dpopKey) proof(token string, edit func(header, claims map[string]interface{})) string {
	ath := sha256.Sum256([]byte(token))
	header := map[string]interface{}{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
	claims := map[string]interface{}{
		"jti": mustRandomID(), "htm": "GET", "htu": "http://api.example/anything",
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(ath[:]),
	}
	if edit != nil {
		edit(header, claims)
	}
	return jws(header, claims, k.sign)
}

func mustRandomID() string {
	id, err := randomID()
	if err != nil {
		panic(err)
	}
	return id
}

// withDPoP sends token with the DPoP scheme and proof in the DPoP header ("": none).
func withDPoP(token, proof string) func(*http.Request) {
	return func(req *http.Request) {
		req.Header.Set("Authorization", "DPoP "+token)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
	}
}

// boundTo is an active answer whose cnf binds the token as members say.
func boundTo(members map[string]interface{}) map[string]interface{} {
	return withClaim("cnf", members)
}

// dpopAlgs is the algs attribute of every DPoP challenge.
const dpopAlgs = `algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`

// Both challenges, as a route with the defaults sends them: the error on the line of the
// scheme the request used.
func bearerError(code string) []string {
	return []string{`Bearer realm="traefik", error="` + code + `"`, `DPoP ` + dpopAlgs}
}

func dpopError(code string) []string {
	return []string{`Bearer realm="traefik"`, `DPoP error="` + code + `", ` + dpopAlgs}
}
