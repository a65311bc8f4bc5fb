package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/mitchellh/mapstructure"

	introspection "github.com/tokengate/traefik-oauth2-introspection"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

// The middleware's DPoP proof checks (RFC 9449 §4.3) against proofs signed by go-jose, a
// JOSE implementation independent of the middleware's, for each kind of key it verifies:
// ES256 (P-256), RS256 and PS256 (RSA 2048), EdDSA (Ed25519). Each row breaks exactly one
// check; the endpoint says every token is active and bound to the row's key (cnf.jkt).
// A proof the middleware can judge alone never reaches the endpoint: 0 calls. The table
// runs against the plugin compiled and as yaegi interprets it (loader.Load), as Traefik
// runs it.

const (
	joseClientID = "gw-jose"
	joseSecret   = "gw-jose-secret"
	// The request every row makes, and the htu of a proof for it: the query is no part of
	// htu (RFC 9449 §4.2), and without TLS or X-Forwarded-Proto the scheme is http.
	joseURL = "http://api.example.test/orders/1?page=2"
	joseHTU = "http://api.example.test/orders/1"
)

// joseKeys are the keys of one row: k, the client's, to which the token is bound, and o,
// another of the same kind.
type joseKeys struct{ k, o *harness.DPoPKey }

// joseRow is one request: the proof it carries for token, and how it is judged.
type joseRow struct {
	name string
	// only, if set, says for which algorithms the row makes sense.
	only  func(jose.SignatureAlgorithm) bool
	proof func(t *testing.T, keys joseKeys, token string) string
	// boundToOther: the answer's cnf.jkt is o's thumbprint, not k's.
	boundToOther bool
	// replay sends the proof twice, the first time admitted.
	replay bool
	// challenge is the DPoP line of the 401 ("" when admitted); calls, the endpoint calls.
	challenge string
	calls     int
}

func joseRows() []joseRow {
	// good is a fresh proof of k with claims changed by edit.
	good := func(edit func(claims map[string]any)) func(*testing.T, joseKeys, string) string {
		return func(t *testing.T, keys joseKeys, token string) string {
			claims := harness.ProofClaims(http.MethodGet, joseHTU, token)
			if edit != nil {
				edit(claims)
			}
			return joseSign(t, keys.k.Alg, keys.k.Key, keys.k.PublicJWK(), nil, claims)
		}
	}
	// withHeader is a fresh proof of k whose header member name is value.
	withHeader := func(name jose.HeaderKey, value any) func(*testing.T, joseKeys, string) string {
		return func(t *testing.T, keys joseKeys, token string) string {
			claims := harness.ProofClaims(http.MethodGet, joseHTU, token)
			return joseSign(t, keys.k.Alg, keys.k.Key, keys.k.PublicJWK(), map[jose.HeaderKey]any{name: value}, claims)
		}
	}
	set := func(name string, value any) func(map[string]any) { return func(c map[string]any) { c[name] = value } }
	unset := func(name string) func(map[string]any) { return func(c map[string]any) { delete(c, name) } }
	proofError := dpopError("invalid_dpop_proof")
	isRSA := func(alg jose.SignatureAlgorithm) bool { return alg == jose.RS256 || alg == jose.PS256 }

	return []joseRow{
		{name: "good", proof: good(nil), calls: 1},
		// RFC 9449 §4.3 step 9 compares htu after RFC 3986 §6.2.2 and §6.2.3 normalization:
		// scheme and host case, the default port, %31 for the unreserved 1, dot segments.
		{name: "htu spelled otherwise", proof: good(set("htu", "HTTP://API.Example.TEST:80/x/../orders/%31")), calls: 1},
		{name: "typ JWT", proof: withHeader("typ", "JWT"), challenge: proofError},
		{name: "alg HS256", proof: func(t *testing.T, keys joseKeys, token string) string {
			secret := []byte("a symmetric key no DPoP proof may use")
			return joseSign(t, jose.HS256, secret, keys.k.PublicJWK(), nil, harness.ProofClaims(http.MethodGet, joseHTU, token))
		}, challenge: proofError},
		{name: "alg none", proof: func(t *testing.T, keys joseKeys, token string) string {
			header := map[string]any{"typ": harness.DPoPType, "alg": "none", "jwk": keys.k.PublicJWK()}
			return joseSegment(t, header) + "." + joseSegment(t, harness.ProofClaims(http.MethodGet, joseHTU, token)) + "."
		}, challenge: proofError},
		// go-jose writes a private key's JWK with d (and RSA's p, q, dp, dq, qi).
		{name: "jwk with the private key", proof: func(t *testing.T, keys joseKeys, token string) string {
			return joseSign(t, keys.k.Alg, keys.k.Key, jose.JSONWebKey{Key: keys.k.Key}, nil, harness.ProofClaims(http.MethodGet, joseHTU, token))
		}, challenge: proofError},
		{name: "crit", proof: withHeader("crit", []string{"exp"}), challenge: proofError},
		// Signed by o, with k's jwk.
		{name: "signature by another key", proof: func(t *testing.T, keys joseKeys, token string) string {
			return joseSign(t, keys.k.Alg, keys.o.Key, keys.k.PublicJWK(), nil, harness.ProofClaims(http.MethodGet, joseHTU, token))
		}, challenge: proofError},
		{name: "RSA key of 1024 bits", only: isRSA, proof: func(t *testing.T, keys joseKeys, token string) string {
			small, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			return joseSign(t, keys.k.Alg, small, jose.JSONWebKey{Key: &small.PublicKey}, nil, harness.ProofClaims(http.MethodGet, joseHTU, token))
		}, challenge: proofError},
		{name: "ES256 with a P-384 key", only: func(alg jose.SignatureAlgorithm) bool { return alg == jose.ES256 },
			proof: func(t *testing.T, _ joseKeys, token string) string { return joseWrongCurve(t, token) }, challenge: proofError},
		{name: "no jti", proof: good(unset("jti")), challenge: proofError},
		{name: "empty jti", proof: good(set("jti", "")), challenge: proofError},
		{name: "htm POST", proof: good(set("htm", http.MethodPost)), challenge: proofError},
		{name: "htu another path", proof: good(set("htu", "http://api.example.test/orders/2")), challenge: proofError},
		{name: "htu https", proof: good(set("htu", "https://api.example.test/orders/1")), challenge: proofError},
		{name: "no iat", proof: good(unset("iat")), challenge: proofError},
		// dpopProofMaxAge is 60s and clockSkew 30s: twice as far off.
		{name: "iat too old", proof: good(set("iat", time.Now().Add(-2*time.Minute).Unix())), challenge: proofError},
		{name: "iat in the future", proof: good(set("iat", time.Now().Add(time.Minute).Unix())), challenge: proofError},
		{name: "no ath", proof: good(unset("ath")), challenge: proofError},
		{name: "ath of another token", proof: good(set("ath", harness.ATH("another-token"))), challenge: proofError},
		// The second time, the answer is cached: no call either way.
		{name: "replay", proof: good(nil), replay: true, challenge: proofError, calls: 1},
		// Whose key the token is bound to is the answer's to say: one call.
		{name: "thumbprint mismatch", proof: good(nil), boundToOther: true, challenge: dpopError("invalid_token"), calls: 1},
	}
}

// joseAlgs are the algorithms of the table's keys.
var joseAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

func TestDPoPProofsByGoJose(t *testing.T) {
	endpoint := newJoseEndpoint(t)
	runJoseTable(t, endpoint, "compiled", func(t *testing.T, raw map[string]interface{}, next http.Handler) (http.Handler, error) {
		config := introspection.CreateConfig()
		// What Traefik's decoding of a plugin's options does (loader.decode).
		decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{WeaklyTypedInput: true, Result: config})
		if err != nil {
			return nil, err
		}
		if err := decoder.Decode(raw); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		return introspection.New(ctx, next, config, "dpop-jose@file")
	})
}

func TestInterpretedDPoPProofsByGoJose(t *testing.T) {
	endpoint := newJoseEndpoint(t)
	p := loader.Load(context.Background(), t, os.Environ())
	runJoseTable(t, endpoint, "interpreted", func(_ *testing.T, raw map[string]interface{}, next http.Handler) (http.Handler, error) {
		return p.New(raw, next)
	})
}

// runJoseTable runs every row for every algorithm through a middleware that newMiddleware
// builds from the plugin options.
func runJoseTable(t *testing.T, endpoint *joseEndpoint, mode string,
	newMiddleware func(*testing.T, map[string]interface{}, http.Handler) (http.Handler, error)) {
	next := &joseNext{}
	handler, err := newMiddleware(t, map[string]interface{}{
		"endpoint": endpoint.url, "clientId": joseClientID, "clientSecret": joseSecret,
		"dpopProofMaxAge": "60s", "clockSkew": "30s",
	}, next)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, alg := range joseAlgs {
		keys := joseKeys{k: dpopKey(t, alg), o: dpopKey(t, alg)}
		for i, row := range joseRows() {
			if row.only != nil && !row.only(alg) {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", alg, row.name), func(t *testing.T) {
				// A token of its own per row: the first request for it is the endpoint's first.
				token := fmt.Sprintf("%s-%s-%d", mode, alg, i)
				jkt := keys.k.Thumbprint()
				if row.boundToOther {
					jkt = keys.o.Thumbprint()
				}
				endpoint.bind(token, jkt)
				calls := endpoint.calls.Load()
				proof := row.proof(t, keys, token)
				if row.replay {
					joseCheck(t, "first", handler, next, token, proof, "")
				}
				joseCheck(t, row.name, handler, next, token, proof, row.challenge)
				if got := endpoint.calls.Load() - calls; got != int64(row.calls) {
					t.Errorf("endpoint calls = %d, want %d", got, row.calls)
				}
			})
		}
	}
}

// joseCheck sends one request with the DPoP scheme and proof, and checks that it reached
// next with its Authorization and DPoP headers, or, when challenge is set, was refused with
// 401 and the Bearer and DPoP challenges.
func joseCheck(t *testing.T, what string, handler http.Handler, next *joseNext, token, proof, challenge string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, joseURL, nil)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	rec := httptest.NewRecorder()
	before := next.calls.Load()
	handler.ServeHTTP(rec, req)
	reached := next.calls.Load() - before
	got := rec.Result().Header.Values("WWW-Authenticate")
	if challenge == "" {
		if reached != 1 || len(got) != 0 {
			t.Errorf("%s: got %d with WWW-Authenticate %q (next reached %d times), want to reach next", what, rec.Code, got, reached)
			return
		}
		if auth, dpop := next.header("Authorization"), next.header("Dpop"); auth != "DPoP "+token || dpop != proof {
			t.Errorf("%s: next got Authorization %s and DPoP %s, want those sent", what, withheld("Authorization", auth), withheld("Dpop", dpop))
		}
		return
	}
	want := []string{bearerLine, challenge}
	if rec.Code != http.StatusUnauthorized || reached != 0 || !slices.Equal(got, want) {
		t.Errorf("%s: got %d with WWW-Authenticate %q (next reached %d times), want 401 with %q", what, rec.Code, got, reached, want)
	}
}

// joseSign signs claims into a compact JWS with alg and key, its header holding typ
// dpop+jwt, jwk and headers (which may replace typ).
func joseSign(t *testing.T, alg jose.SignatureAlgorithm, key any, jwk jose.JSONWebKey, headers map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(harness.DPoPType).WithHeader("jwk", jwk)
	for name, value := range headers {
		opts.WithHeader(name, value)
	}
	proof, err := harness.SignJWS(jose.SigningKey{Algorithm: alg, Key: key}, opts, claims)
	if err != nil {
		t.Fatalf("go-jose signing with %s: %v", alg, err)
	}
	return proof
}

// joseSegment is v as JSON, base64url: one part of a compact JWS built by hand.
func joseSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(string(b))
}

// joseNext is the backend: it counts the requests that reach it and keeps the last one's
// headers.
type joseNext struct {
	calls atomic.Int64
	mu    sync.Mutex
	last  http.Header
}

func (n *joseNext) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.last = r.Header.Clone()
	n.mu.Unlock()
	n.calls.Add(1)
}

func (n *joseNext) header(name string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last.Get(name)
}

// joseEndpoint is an RFC 7662 endpoint for joseClientID (client_secret_basic) that says
// every token bound with bind is active and DPoP-bound to its key, and others inactive.
type joseEndpoint struct {
	url   string
	calls atomic.Int64
	jkts  sync.Map // token → cnf.jkt
}

func newJoseEndpoint(t *testing.T) *joseEndpoint {
	t.Helper()
	e := &joseEndpoint{}
	e.url = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != joseClientID || secret != joseSecret || r.Method != http.MethodPost {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		e.calls.Add(1)
		answer := map[string]any{"active": false}
		if jkt, ok := e.jkts.Load(r.PostFormValue("token")); ok {
			answer = map[string]any{"active": true, "token_type": "DPoP", "exp": time.Now().Add(time.Hour).Unix(),
				"cnf": map[string]any{"jkt": jkt}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})) + "/introspect"
	return e
}

// bind makes token active and bound to the key whose thumbprint is jkt.
func (e *joseEndpoint) bind(token, jkt string) { e.jkts.Store(token, jkt) }

// joseWrongCurve is an ES256 proof by a P-384 key: go-jose refuses to make one, so it is
// signed here, over SHA-256 as ES256 says, r and s each in the curve's 48 bytes. A verifier
// that took the key's curve as it comes would accept it.
func joseWrongCurve(t *testing.T, token string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]any{"typ": harness.DPoPType, "alg": "ES256", "jwk": jose.JSONWebKey{Key: &key.PublicKey}}
	input := joseSegment(t, header) + "." + joseSegment(t, harness.ProofClaims(http.MethodGet, joseHTU, token))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// dpopNonce without shared state (RFC 9449 §9): two yaegi interpreters of the plugin are two
// replicas that share nothing, as two Traefik processes; a nonce one gives, the other takes,
// when both have the same configuration. A replica with another client secret derives
// other nonces and asks for one of its own, before any introspection call.
func TestInterpretedDPoPNonceAcrossReplicas(t *testing.T) {
	endpoint := newJoseEndpoint(t)
	replica := func(secret string) http.Handler {
		p := loader.Load(context.Background(), t, os.Environ())
		h, err := p.New(map[string]interface{}{"endpoint": endpoint.url, "clientId": joseClientID, "clientSecret": secret,
			"dpopNonce": "true"}, &joseNext{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return h
	}
	a, b, other := replica(joseSecret), replica(joseSecret), replica("another-secret")
	key := dpopKey(t, jose.ES256)
	const token = "nonce-token"
	endpoint.bind(token, key.Thumbprint())
	send := func(h http.Handler, nonce string) *httptest.ResponseRecorder {
		claims := harness.ProofClaims(http.MethodGet, joseHTU, token)
		if nonce != "" {
			claims["nonce"] = nonce
		}
		req := httptest.NewRequest(http.MethodGet, joseURL, nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", joseSign(t, key.Alg, key.Key, key.PublicJWK(), nil, claims))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	askedForNonce := func(what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		want := []string{bearerLine, nonceDPoP}
		if got := rec.Result().Header.Values("WWW-Authenticate"); rec.Code != http.StatusUnauthorized || !slices.Equal(got, want) ||
			rec.Header().Get("DPoP-Nonce") == "" {
			t.Errorf("%s: got %d with WWW-Authenticate %q and DPoP-Nonce %q, want 401 with %q and a nonce",
				what, rec.Code, got, rec.Header().Get("DPoP-Nonce"), want)
		}
	}

	first := send(a, "")
	askedForNonce("replica a, no nonce", first)
	nonce := first.Header().Get("DPoP-Nonce")
	askedForNonce("another configuration, a's nonce", send(other, nonce))
	if got := endpoint.calls.Load(); got != 0 {
		t.Errorf("endpoint calls before a proof with a good nonce = %d, want 0", got)
	}
	if rec := send(b, nonce); rec.Code != http.StatusOK || len(rec.Result().Header.Values("WWW-Authenticate")) != 0 {
		t.Errorf("replica b, a's nonce: got %d with WWW-Authenticate %q, want it to pass", rec.Code, rec.Result().Header.Values("WWW-Authenticate"))
	}
	if got := endpoint.calls.Load(); got != 1 {
		t.Errorf("endpoint calls = %d, want 1", got)
	}
}
