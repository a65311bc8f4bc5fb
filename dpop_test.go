package introspection

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// RFC 7638 §3.1: the thumbprint of RFC 7517 appendix A.1's RSA key.
func TestThumbprint(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	// The members in another order, with one that is not required: neither counts.
	_, jkt, err := proofKey([]byte(`{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; jkt != want {
		t.Errorf("thumbprint = %q, want RFC 7638's %q", jkt, want)
	}
	// A modulus past maxProofRSABits is refused before any signature is checked with it.
	huge := new(big.Int).SetBit(new(big.Int).Lsh(big.NewInt(1), 4159), 0, 1)
	if _, _, err := proofKey([]byte(`{"kty":"RSA","e":"AQAB","n":"` + base64.RawURLEncoding.EncodeToString(huge.Bytes()) + `"}`)); err == nil ||
		!strings.Contains(err.Error(), "4160 bits, over 4096") {
		t.Errorf("a 4160-bit RSA jwk: %v, want it refused for its size", err)
	}
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA"} {
		k := newDPoPKey(t, alg)
		_, jkt, err := proofKey(mustJSON(k.jwk))
		if err != nil || jkt != k.thumbprint() {
			t.Errorf("%s: thumbprint %q, %v; want %q", alg, jkt, err, k.thumbprint())
		}
	}
}

// TestDPoPProof sends a DPoP-bound token with proofs that each break one check of RFC 9449
// §4.3 (or none), each to an endpoint of its own: a proof judged bad before introspection
// costs no call.
func TestDPoPProof(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	other := newDPoPKey(t, "ES256")
	weakKey := mustKey(rsa.GenerateKey(rand.Reader, 1024))
	weak := &dpopKey{alg: "RS256", sign: signAs("RS", crypto.SHA256, weakKey)}
	json.Unmarshal([]byte(publicJWK(weakKey, "")), &weak.jwk)
	p256as384 := &dpopKey{alg: "ES384", sign: signAs("ES", crypto.SHA384, testECKey)}
	json.Unmarshal([]byte(publicJWK(testECKey, "")), &p256as384.jwk)
	hs256 := &dpopKey{alg: "HS256", jwk: key.jwk, sign: func(input []byte) []byte {
		mac := hmac.New(sha256.New, []byte("a shared secret, 32 bytes long.."))
		mac.Write(input)
		return mac.Sum(nil)
	}}
	none := &dpopKey{alg: "none", jwk: key.jwk, sign: func(input []byte) []byte { return nil }}
	// An RSA modulus past maxProofRSABits: never a real key, and refused before any
	// signature check (which would cost 20 ms at 16,000 bits).
	huge := new(big.Int).SetBit(new(big.Int).Lsh(big.NewInt(1), 4159), 0, 1)
	hugeRSA := &dpopKey{alg: "RS256", sign: signAs("RS", crypto.SHA256, testRSAKey), jwk: map[string]interface{}{
		"kty": "RSA", "e": "AQAB", "n": base64.RawURLEncoding.EncodeToString(huge.Bytes())}}
	// The Ed25519 identity point: crypto/ed25519 takes R the identity and S zero for its
	// signature of anything.
	identity := make([]byte, 32)
	identity[0] = 1
	smallOrder := &dpopKey{alg: "EdDSA", jwk: map[string]interface{}{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(identity)},
		sign: func(input []byte) []byte { return append(append([]byte{}, identity...), make([]byte, 32)...) }}

	type dpopCase struct {
		name      string
		key       *dpopKey                                      // the token is bound to it; key unless set
		token     string                                        // "tok" unless set
		proof     func(token string) string                     // a fresh proof by the case's key unless set
		request   func(token, proof string) func(*http.Request) // withDPoP unless set
		status    int
		challenge []string
		calls     int
	}
	by := func(k *dpopKey, edit func(header, claims map[string]interface{})) func(token string) string {
		return func(token string) string { return k.proof(token, edit) }
	}
	edited := func(edit func(header, claims map[string]interface{})) func(token string) string { return by(key, edit) }
	withJWK := func(name string, value interface{}) func(token string) string { // key's jwk with name set to value
		return edited(func(h, _ map[string]interface{}) {
			jwk := map[string]interface{}{name: value}
			for member, v := range key.jwk {
				if member != name {
					jwk[member] = v
				}
			}
			h["jwk"] = jwk
		})
	}
	claim := func(name string, value interface{}) func(token string) string {
		return edited(func(_, c map[string]interface{}) {
			if value == nil {
				delete(c, name)
			} else {
				c[name] = value
			}
		})
	}
	bad := dpopError("invalid_dpop_proof")
	cases := []dpopCase{
		{name: "a fresh proof", status: 200, calls: 1},
		{name: "the scheme in lower case", request: func(token, proof string) func(*http.Request) {
			return func(r *http.Request) { r.Header.Set("Authorization", "dpop "+token); r.Header.Set("DPoP", proof) }
		}, status: 200, calls: 1},
		{name: "htu with a query and a fragment, which do not count", proof: claim("htu", "http://api.example/anything?x=1#top"), status: 200, calls: 1},
		{name: "no DPoP header", proof: func(token string) string { return "" }, status: 401, challenge: bad},
		{name: "two DPoP headers", request: func(token, proof string) func(*http.Request) {
			return func(r *http.Request) { withDPoP(token, proof)(r); r.Header.Add("DPoP", proof) }
		}, status: 401, challenge: bad},
		{name: "not a JWS", proof: func(token string) string { return "not.a-jws" }, status: 401, challenge: bad},
		{name: "base64url with padding", proof: func(token string) string { return key.proof(token, nil) + "=" }, status: 401, challenge: bad},
		{name: "typ JWT", proof: edited(func(h, _ map[string]interface{}) { h["typ"] = "JWT" }), status: 401, challenge: bad},
		{name: "no typ", proof: edited(func(h, _ map[string]interface{}) { delete(h, "typ") }), status: 401, challenge: bad},
		{name: "alg HS256", proof: by(hs256, nil), status: 401, challenge: bad},
		{name: "alg none", proof: by(none, nil), status: 401, challenge: bad},
		{name: "no jwk", proof: edited(func(h, _ map[string]interface{}) { delete(h, "jwk") }), status: 401, challenge: bad},
		{name: "typ in capitals", proof: edited(func(h, _ map[string]interface{}) { h["typ"] = "DPoP+JWT" }), status: 200, calls: 1},
		{name: "a proof over 8 KiB", proof: claim("pad", strings.Repeat("a", 9000)), status: 401, challenge: bad},
		{name: "a jwk with the private member d", proof: withJWK("d", "AAAA"), status: 401, challenge: bad},
		{name: "a jwk with a symmetric key's k", proof: withJWK("k", "AAAA"), status: 401, challenge: bad},
		{name: "a jwk whose x is not canonical base64url", proof: withJWK("x", key.jwk["x"].(string)+"\n"), status: 401, challenge: bad},
		{name: "an RSA key of 4160 bits", key: hugeRSA, status: 401, challenge: bad},
		{name: "an Ed25519 key of small order, whose forged signature verifies", key: smallOrder, status: 401, challenge: bad},
		{name: "a 1024-bit RSA key", key: weak, status: 401, challenge: bad},
		{name: "ES384 with a P-256 key", key: p256as384, status: 401, challenge: bad},
		{name: "crit", proof: edited(func(h, _ map[string]interface{}) { h["crit"] = []string{"exp"} }), status: 401, challenge: bad},
		{name: "a signature by another key", proof: func(token string) string {
			good := key.proof(token, nil)
			forged := other.proof(token, nil)
			return good[:strings.LastIndexByte(good, '.')] + forged[strings.LastIndexByte(forged, '.'):]
		}, status: 401, challenge: bad},
		{name: "no jti", proof: claim("jti", nil), status: 401, challenge: bad},
		{name: "a jti that is a number", proof: claim("jti", 7), status: 401, challenge: bad},
		{name: "htm POST", proof: claim("htm", "POST"), status: 401, challenge: bad},
		{name: "htm get", proof: claim("htm", "get"), status: 401, challenge: bad},
		{name: "htu another path", proof: claim("htu", "http://api.example/other"), status: 401, challenge: bad},
		{name: "htu another host", proof: claim("htu", "http://evil.example/anything"), status: 401, challenge: bad},
		{name: "htu https for an http request", proof: claim("htu", "https://api.example/anything"), status: 401, challenge: bad},
		{name: "iat past dpopProofMaxAge", proof: claim("iat", time.Now().Add(-61*time.Second).Unix()), status: 401, challenge: bad},
		{name: "iat past clockSkew ahead", proof: claim("iat", time.Now().Add(40*time.Second).Unix()), status: 401, challenge: bad}, // whole seconds: a margin
		{name: "no iat", proof: claim("iat", nil), status: 401, challenge: bad},
		{name: "iat in a string", proof: claim("iat", "1700000000"), status: 401, challenge: bad},
		{name: "no ath", proof: claim("ath", nil), status: 401, challenge: bad},
		{name: "the ath of another token", proof: func(token string) string { return key.proof("another", nil) }, status: 401, challenge: bad},
		{name: "a good proof by a key the token is not bound to", proof: by(other, nil),
			status: 401, challenge: dpopError("invalid_token"), calls: 1},
		{name: "a token bound to no key, with the DPoP scheme", token: "plain", status: 401, challenge: dpopError("invalid_token"), calls: 1},
		{name: "the bound token as a bearer token", request: func(token, _ string) func(*http.Request) { return bearer(token) },
			status: 401, challenge: bearerError("invalid_token"), calls: 1},
		{name: "the bound token as a bearer token, with a good proof", request: func(token, proof string) func(*http.Request) {
			return func(r *http.Request) { bearer(token)(r); r.Header.Set("DPoP", proof) }
		}, status: 401, challenge: bearerError("invalid_token"), calls: 1},
	}
	for _, alg := range []string{"ES384", "ES512", "RS256", "RS512", "PS256", "PS384", "EdDSA"} {
		cases = append(cases, dpopCase{name: "a fresh " + alg + " proof", key: newDPoPKey(t, alg), status: 200, calls: 1})
	}
	for _, alg := range []string{"ES512", "EdDSA"} { // the RSA ones share one key
		k := newDPoPKey(t, alg)
		forger := newDPoPKey(t, alg)
		cases = append(cases, dpopCase{name: "an " + alg + " signature by another key", key: k, proof: func(token string) string {
			good := k.proof(token, nil)
			forged := forger.proof(token, nil)
			return good[:strings.LastIndexByte(good, '.')] + forged[strings.LastIndexByte(forged, '.'):]
		}, status: 401, challenge: bad})
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			bound := tc.key
			if bound == nil {
				bound = key
			}
			token := tc.token
			if token == "" {
				token = "tok"
			}
			as := newAuthServer(t)
			as.answer("tok", boundTo(map[string]interface{}{"jkt": bound.thumbprint()}))
			as.answer("plain", activeClaims())
			proof := bound.proof(token, nil)
			if tc.proof != nil {
				proof = tc.proof(token)
			}
			request := withDPoP(token, proof)
			if tc.request != nil {
				request = tc.request(token, proof)
			}
			m, next := newMiddleware(t, testConfig(as.URL))
			var sent http.Header
			rec := serve(m, func(r *http.Request) { request(r); sent = r.Header.Clone() })
			if rec.Code != tc.status || !reflect.DeepEqual(rec.Header().Values("WWW-Authenticate"), tc.challenge) {
				t.Errorf("status %d, challenges %q; want %d, %q", rec.Code, rec.Header().Values("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if as.callCount() != tc.calls {
				t.Errorf("the endpoint had %d calls, want %d", as.callCount(), tc.calls)
			}
			if reached := next.count() == 1; reached != (tc.status == 200) {
				t.Errorf("the backend was reached: %v", reached)
			} else if got := next.lastRequest(); reached && (got.Header.Get("Authorization") != sent.Get("Authorization") || got.Header.Get("DPoP") != proof) {
				t.Errorf("the backend got Authorization %q and DPoP %q, want them as sent", got.Header.Get("Authorization"), got.Header.Get("DPoP"))
			}
		})
	}
}

func mustJSON(v interface{}) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// TestDPoPReplay sends one proof twice, and again at the window's last instant and just
// after it, each time beside a proof never sent before with the same iat: a replay is
// refused while the proof is remembered (the other passes), and after that as too old (the
// other is refused too). The token's answer is cached: only the first request calls.
func TestDPoPReplay(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	config := testConfig(as.URL)
	config.CacheTTL = "10m"
	m, next := newMiddleware(t, config)
	c := &clock{t: time.Now().Truncate(time.Second)}
	m.now = c.now
	iat := c.now().Unix()
	issued := func() string {
		return key.proof("tok", func(_, claims map[string]interface{}) { claims["iat"] = iat })
	}
	proof := issued()
	steps := []struct {
		after        time.Duration // since the proof's iat
		status, anew int           // the replay's, and a new proof's with the same iat
	}{
		{0, 200, 200}, // the first use
		{0, 401, 200},
		{60 * time.Second, 401, 200}, // the window's last instant: still remembered
		{60*time.Second + time.Nanosecond, 401, 401},
	}
	start := c.now()
	admitted := 0
	for i, step := range steps {
		c.t = start.Add(step.after)
		for _, sent := range []struct {
			proof  string
			status int
		}{{proof, step.status}, {issued(), step.anew}} {
			if i == 0 && sent.proof != proof {
				continue
			}
			rec := serve(m, withDPoP("tok", sent.proof))
			want := []string(nil)
			if sent.status != 200 {
				want = dpopError("invalid_dpop_proof")
			} else {
				admitted++
			}
			if rec.Code != sent.status || !reflect.DeepEqual(rec.Header().Values("WWW-Authenticate"), want) {
				t.Errorf("step %d, %v after iat, the proof sent first %v: status %d, challenges %q; want %d, %q", i+1, step.after,
					sent.proof == proof, rec.Code, rec.Header().Values("WWW-Authenticate"), sent.status, want)
			}
		}
	}
	if next.count() != admitted || as.callCount() != 1 {
		t.Errorf("the backend got %d requests and the endpoint %d calls, want %d and 1", next.count(), as.callCount(), admitted)
	}
}

// TestDPoPChain: two instances in a chain (an entry point's and a router's, say) both check
// the one proof of a request, and the second does not take it for a replay.
func TestDPoPChain(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	inner, next := newMiddleware(t, testConfig(as.URL))
	config := testConfig(as.URL)
	config.RequiredScopes = []string{"read"}
	outer, err := New(context.Background(), inner, config, "outer@test")
	if err != nil {
		t.Fatal(err)
	}
	proof := key.proof("tok", nil)
	if rec := serve(outer, withDPoP("tok", proof)); rec.Code != 200 || next.count() != 1 {
		t.Fatalf("through both: status %d, backend reached %d times; want 200, once", rec.Code, next.count())
	}
	if rec := serve(outer, withDPoP("tok", proof)); rec.Code != 401 || next.count() != 1 {
		t.Errorf("the proof again: status %d, backend reached %d times; want 401, still once", rec.Code, next.count())
	}
}

// TestProofURL compares a proof's htu with the request's URL after RFC 3986 §6.2.2–6.2.3
// normalisation, dot segments and repeated slashes taken out as Traefik's sanitizePath does.
func TestProofURL(t *testing.T) {
	cases := []struct {
		htu     string
		request func(*http.Request)
		match   bool
	}{
		{"http://api.example/anything", nil, true},
		{"HTTP://API.EXAMPLE/anything", nil, true},
		{"http://api.example:80/anything", nil, true},
		{"http://api.example:/anything", nil, true},
		{"http://api.example/%61nything", nil, true},           // an escaped unreserved character
		{"http://api.example/a/./b/../../anything", nil, true}, // dot segments
		{"http://api.example//anything", nil, true},            // Traefik's sanitizePath merges slashes
		{"http://api.example/anything/", nil, false},           // a trailing slash is another path
		{"http://api.example/Anything", nil, false},            // the path's case counts
		{"http://api.example:8080/anything", nil, false},       // another port
		{"https://api.example/anything", nil, false},           // another scheme
		{"api.example/anything", nil, false},                   // not absolute
		{"ftp://api.example/anything", nil, false},             // not http
		{"http://user@api.example/anything", nil, false},       // userinfo
		{"https://api.example/anything", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, true},
		{"https://api.example:443/anything", func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, true},
		{"https://api.example/anything", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, true},
		{"http://api.example/anything", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") }, false},
		{"https://api.example/anything", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "wss") }, true},
		{"http://api.example/a%2fb", func(r *http.Request) { r.URL.RawPath = "/a%2Fb"; r.URL.Path = "/a/b" }, true}, // escape case
		{"http://api.example/a/b", func(r *http.Request) { r.URL.RawPath = "/a%2Fb"; r.URL.Path = "/a/b" }, false},  // an escaped slash is not a slash
		{"http://API.example/", func(r *http.Request) { r.Host = "api.EXAMPLE"; r.URL.Path = "" }, true},
	}
	// readProof judges htu as it does on a request: the rest of each proof is good.
	key := newDPoPKey(t, "ES256")
	m, _ := newMiddleware(t, testConfig("http://auth.example/introspect"))
	sum := sha256.Sum256([]byte("tok"))
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, "http://api.example/anything", nil)
		if tc.request != nil {
			tc.request(req)
		}
		req.Header.Set("DPoP", key.proof("tok", func(_, claims map[string]interface{}) { claims["htu"] = tc.htu }))
		if _, rej, err := m.readProof(req, sum[:], time.Now().UnixNano()); (rej == nil) != tc.match {
			t.Errorf("htu %q for %s://%s%s: %v, want a match %v", tc.htu, requestScheme(req), req.Host, req.URL.EscapedPath(), err, tc.match)
		}
	}
	for path, want := range map[string]string{"/a/b/../c": "/a/c", "/a/..": "/", "/..": "/", "/a/.": "/a", "/a/b/": "/a/b/", "/a//b": "/a/b", "/a/.b": "/a/.b", "/%2e%2E/x": "/x"} {
		if got := normalURL("http", "h", path); got != "http://h"+want {
			t.Errorf("the path %q normalises to %q, want %q", path, got, "http://h"+want)
		}
	}
}

// TestDPoPNonce demands nonces (RFC 9449 §9): a proof without one gets use_dpop_nonce and
// a nonce, which the retry carries; a nonce lasts from one to two dpopProofMaxAge; another
// replica with the same configuration takes it, one with another secret does not.
func TestDPoPNonce(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	config := testConfig(as.URL)
	config.DPoPNonce = true
	config.CacheTTL = "10m"
	c := &clock{t: time.Unix(6000, 0)} // the start of a nonce period (15 s)
	replica := func(secret string) *middleware {
		config.ClientSecret = secret
		m, _ := newMiddleware(t, config)
		m.now = c.now
		return m
	}
	m, other, stranger := replica("s3cret-value"), replica("s3cret-value"), replica("another-secret")
	send := func(m *middleware, nonce string) *httptest.ResponseRecorder {
		return serve(m, withDPoP("tok", key.proof("tok", func(_, claims map[string]interface{}) {
			claims["iat"] = c.now().Unix()
			if nonce != "" {
				claims["nonce"] = nonce
			}
		})))
	}
	demand := []string{`Bearer realm="traefik"`, `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", ` + dpopAlgs}

	rec := send(m, "")
	nonce := rec.Header().Get("DPoP-Nonce")
	if rec.Code != 401 || !reflect.DeepEqual(rec.Header().Values("WWW-Authenticate"), demand) || nonce == "" {
		t.Fatalf("no nonce: status %d, challenges %q, DPoP-Nonce %q; want 401, %q and a nonce", rec.Code, rec.Header().Values("WWW-Authenticate"), nonce, demand)
	}
	if as.callCount() != 0 {
		t.Errorf("a proof without a nonce cost %d calls, want 0", as.callCount())
	}
	steps := []struct {
		name    string
		m       *middleware
		nonce   string
		advance time.Duration
		status  int
		renewed bool // the answer carries the next period's nonce
	}{
		{"the retry with the nonce", m, nonce, 0, 200, false},
		{"another replica", other, nonce, 0, 200, false},
		{"a replica with another secret", stranger, nonce, 0, 401, false},
		{"a nonce with its MAC altered", m, flip(nonce, 0), 0, 401, false},
		{"in the next period", m, nonce, 15 * time.Second, 200, true}, // a quarter of dpopProofMaxAge
		{"two periods on", m, nonce, 15 * time.Second, 401, false},
	}
	for _, step := range steps {
		c.advance(step.advance)
		rec := send(step.m, step.nonce)
		fresh := rec.Header().Get("DPoP-Nonce")
		if wantNonce := step.status == 401 || step.renewed; rec.Code != step.status || (fresh != "") != wantNonce {
			t.Errorf("%s: status %d, DPoP-Nonce %q; want %d, a nonce %v", step.name, rec.Code, fresh, step.status, wantNonce)
		}
		if fresh != "" && fresh == step.nonce {
			t.Errorf("%s: the new nonce is the old one", step.name)
		}
	}
}

// parseProof is readProof's reading of the JWS and its signature check, without a request.
func parseProof(jws string) (string, *proofClaims, error) {
	u, err := readJWS(jws)
	if err != nil {
		return "", nil, err
	}
	if err := u.verify(); err != nil {
		return "", nil, err
	}
	return u.header.jkt, &u.claims, nil
}

// FuzzProof feeds parseProof anything: it never panics, and what it accepts names a
// thumbprint and claims.
func FuzzProof(f *testing.F) {
	key := newDPoPKey(f, "ES256")
	f.Add(key.proof("tok", nil))
	f.Add(newDPoPKey(f, "EdDSA").proof("tok", nil))
	f.Add(newDPoPKey(f, "RS256").proof("tok", nil))
	f.Add("e30.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, jws string) {
		jkt, claims, err := parseProof(jws)
		if err == nil && (len(jkt) != 43 || claims == nil) {
			t.Fatalf("accepted %q with thumbprint %q and claims %v", jws, jkt, claims)
		}
		if err != nil && !errors.Is(err, errProof) {
			t.Fatalf("an error that is not a proof's: %v", err)
		}
	})
}

// TestProofHeaderMemory: a client's header is read once and then found; a bad one is never
// kept, and the memory holds at most maxProofHeaders.
func TestProofHeaderMemory(t *testing.T) {
	saved := proofHeaders
	proofHeaders = &headerMemory{checked: map[string]*proofHeader{}}
	t.Cleanup(func() { proofHeaders = saved })
	key := newDPoPKey(t, "EdDSA")
	for i := 0; i < 2; i++ {
		if _, _, err := parseProof(key.proof("tok", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if len(proofHeaders.checked) != 1 {
		t.Errorf("two proofs by one key left %d headers, want 1", len(proofHeaders.checked))
	}
	if _, _, err := parseProof(key.proof("tok", func(h, _ map[string]interface{}) { h["typ"] = "JWT" })); err == nil || len(proofHeaders.checked) != 1 {
		t.Errorf("a bad header: error %v, %d headers kept; want an error and 1", err, len(proofHeaders.checked))
	}
	for i := 0; i < maxProofHeaders; i++ {
		if _, _, err := parseProof(newDPoPKey(t, "EdDSA").proof("tok", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(proofHeaders.checked); n < 1 || n > maxProofHeaders {
		t.Errorf("%d headers kept, want 1 to %d", n, maxProofHeaders)
	}
}
