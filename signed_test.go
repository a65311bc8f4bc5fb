package introspection

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// setMember sets name in m, or removes it when value is nil.
func setMember(m map[string]interface{}, name string, value interface{}) {
	if value == nil {
		delete(m, name)
	} else {
		m[name] = value
	}
}

// signedServer is an endpoint that answers the token "tok" with answer (none if nil), and
// the configuration of a middleware that asks it for signed answers, checks them with
// keysFile and forwards them in X-Introspection-JWT.
func signedServer(t testing.TB, answer interface{}, keysFile string) (*authServer, *Config) {
	as := newAuthServer(t)
	if answer != nil {
		as.answer("tok", answer)
	}
	config := testConfig(as.URL)
	config.ResponseFormat, config.ResponseKeysFile = "jwt", keysFile
	config.ForwardIntrospectionJWT = "X-Introspection-JWT"
	return as, config
}

// TestSignedResponses: with responseFormat jwt only an answer signed as RFC 9701 says is
// read. Anything else is the endpoint failing: 503, never cached, so the next request asks
// again. The backend gets the verified answer in forwardIntrospectionJWT, never a copy the
// client sent.
func TestSignedResponses(t *testing.T) {
	jwksFile, pemFile := responseKeyFiles(t)
	rsaPublicPEM := publicPEM(testRSAKey)
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	valid := signedAnswer(nil)
	set := func(name string, value interface{}) func(h, c map[string]interface{}) {
		return func(h, c map[string]interface{}) { setMember(c, name, value) }
	}
	setHeader := func(name string, value interface{}) func(h, c map[string]interface{}) {
		return func(h, c map[string]interface{}) { setMember(h, name, value) }
	}
	ecAnswer := func(edit func(h, c map[string]interface{})) string {
		header := map[string]interface{}{"alg": "ES256", "typ": "application/token-introspection+jwt", "kid": ecKid}
		claims := signedClaims()
		claims["aud"] = []string{"other", "traefik"}
		if edit != nil {
			edit(header, claims)
		}
		return jws(header, claims, signAs("ES", crypto.SHA256, testECKey))
	}
	// An Ed25519 server key (RFC 8037), as a JWK and as PEM, and another that signs nothing.
	edPublic := testEdKey.Public().(ed25519.PublicKey)
	edStranger := newEdKey()
	edJWKS := writeFile(t, "ed.json", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+base64.RawURLEncoding.EncodeToString(edPublic)+`"}]}`)
	edDER, _ := x509.MarshalPKIXPublicKey(edPublic)
	edPEM := writePEM(t, "ed.pem", "PUBLIC KEY", edDER)
	edHeader := map[string]interface{}{"alg": "EdDSA", "typ": "token-introspection+jwt"}
	edAnswer := jws(edHeader, signedClaims(), signAs("Ed", 0, testEdKey))

	cases := []struct {
		desc      string
		answer    string
		configure func(*Config)
		status    int
	}{
		{desc: "signed with RS256", answer: valid, status: 200},
		{desc: "keys as PEM", answer: valid, configure: func(c *Config) { c.ResponseKeysFile = pemFile }, status: 200},
		{desc: "ES256, aud a list, typ with application/", answer: ecAnswer(nil), status: 200},
		{desc: "EdDSA, the key a JWK", answer: edAnswer, configure: func(c *Config) { c.ResponseKeysFile = edJWKS }, status: 200},
		{desc: "EdDSA, the key as PEM", answer: edAnswer, configure: func(c *Config) { c.ResponseKeysFile = edPEM }, status: 200},
		{desc: "EdDSA by another key", answer: jws(edHeader, signedClaims(), signAs("Ed", 0, edStranger)),
			configure: func(c *Config) { c.ResponseKeysFile = edJWKS }, status: 503},
		{desc: "iss in issuers", answer: valid, configure: func(c *Config) { c.Issuers = []string{"https://issuer.example"} }, status: 200},
		{desc: "inactive, signed", answer: signedAnswer(set("token_introspection", map[string]interface{}{"active": false})), status: 401},
		{desc: "an active answer the policy refuses", answer: valid, configure: func(c *Config) { c.RequiredScopes = []string{"admin"} }, status: 403},

		{desc: "a flipped signature byte", answer: flip(valid, 2), status: 503},
		{desc: "a flipped claims byte", answer: flip(valid, 1), status: 503},
		{desc: "a flipped header byte", answer: flip(valid, 0), status: 503},
		{desc: `alg "none"`, answer: jws(map[string]interface{}{"alg": "none", "typ": "token-introspection+jwt"},
			signedClaims(), nil), status: 503},
		{desc: "HS256 keyed with the RSA public key", answer: jws(map[string]interface{}{"alg": "HS256", "typ": "token-introspection+jwt", "kid": rsaKid},
			signedClaims(),
			func(input []byte) []byte {
				mac := hmac.New(sha256.New, rsaPublicPEM)
				mac.Write(input)
				return mac.Sum(nil)
			}), status: 503},
		{desc: "signed by a key not in responseKeysFile", answer: jws(map[string]interface{}{"alg": "ES256", "typ": "token-introspection+jwt"},
			signedClaims(),
			signAs("ES", crypto.SHA256, strangerKey)), status: 503},
		{desc: "a kid that names the other key", answer: signedAnswer(setHeader("kid", ecKid)), status: 503},
		{desc: "RS256 signature under ES256", answer: signedAnswer(setHeader("alg", "ES256")), status: 503},
		{desc: "crit extensions", answer: signedAnswer(setHeader("crit", []string{"exp"})), status: 503},
		{desc: "typ JWT", answer: signedAnswer(setHeader("typ", "JWT")), status: 503},
		{desc: "no typ", answer: signedAnswer(setHeader("typ", nil)), status: 503},
		{desc: "aud another client", answer: signedAnswer(set("aud", "someone-else")), status: 503},
		{desc: "no aud", answer: signedAnswer(set("aud", nil)), status: 503},
		{desc: "iat ten minutes old", answer: signedAnswer(set("iat", time.Now().Add(-10*time.Minute).Unix())), status: 503},
		{desc: "iat ten minutes ahead", answer: signedAnswer(set("iat", time.Now().Add(10*time.Minute).Unix())), status: 503},
		{desc: "no iat", answer: signedAnswer(set("iat", nil)), status: 503},
		{desc: "exp passed", answer: signedAnswer(set("exp", time.Now().Add(-time.Hour).Unix())), status: 503},
		{desc: "no iss", answer: signedAnswer(set("iss", nil)), status: 503},
		{desc: "iss not in issuers", answer: valid, configure: func(c *Config) { c.Issuers = []string{"https://other.example"} }, status: 503},
		{desc: "no token_introspection", answer: signedAnswer(set("token_introspection", nil)), status: 503},
		{desc: "token_introspection without a boolean active", answer: signedAnswer(set("token_introspection", map[string]interface{}{"active": "true"})), status: 503},
		{desc: "the answer as plain JSON", answer: `{"active":true,"sub":"alice","scope":"read"}`, status: 503},
		{desc: "two JWS", answer: valid + "\n" + valid, status: 503},
	}
	challenges := map[int]string{ // the policy refusal requires admin
		401: challengeToken,
		403: `Bearer realm="traefik", error="insufficient_scope", scope="admin"`,
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as, config := signedServer(t, tc.answer, jwksFile)
			config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub"}
			if tc.configure != nil {
				tc.configure(config)
			}
			m, next := newMiddleware(t, config)
			forged := func(r *http.Request) {
				bearer("tok")(r)
				r.Header.Set("X-Introspection-JWT", valid)
				r.Header["X_Introspection_Jwt"] = []string{"forged"}
			}

			for i := 1; i <= 2; i++ {
				rec := serve(m, forged)
				if rec.Code != tc.status {
					t.Fatalf("request %d: status = %d, want %d", i, rec.Code, tc.status)
				}
				if got := rec.Header().Get("WWW-Authenticate"); got != challenges[tc.status] {
					t.Errorf("request %d: WWW-Authenticate = %q, want %q", i, got, challenges[tc.status])
				}
			}
			req, _ := as.lastCall()
			if got := req.Header.Get("Accept"); got != "application/token-introspection+jwt" {
				t.Errorf("Accept = %q, want application/token-introspection+jwt (RFC 9701 §4)", got)
			}
			wantCalls := 1
			if tc.status == http.StatusServiceUnavailable {
				wantCalls = 2 // a failure is never cached
			}
			if as.callCount() != wantCalls {
				t.Errorf("endpoint calls = %d, want %d", as.callCount(), wantCalls)
			}
			if tc.status != http.StatusOK {
				if next.count() != 0 {
					t.Errorf("the backend was reached")
				}
				return
			}

			upstream := next.lastRequest().Header
			if got := upstream["X-Introspection-Jwt"]; len(got) != 1 || got[0] != tc.answer {
				t.Fatalf("X-Introspection-JWT = %q, want the endpoint's signed answer", got)
			}
			if others := otherSpellings(upstream, "X-Introspection-Jwt"); len(others) > 0 {
				t.Errorf("the client's %v reached the backend", others)
			}
			claims := verifiedByServerKeys(t, upstream.Get("X-Introspection-Jwt"))
			inner, _ := claims["token_introspection"].(map[string]interface{})
			if inner["sub"] != "alice" || upstream.Get("X-Auth-Subject") != "alice" {
				t.Errorf("sub = %v in the JWT, %q in X-Auth-Subject; want alice in both", inner["sub"], upstream.Get("X-Auth-Subject"))
			}
		})
	}

	t.Run("optional, no token: the client's copy is removed", func(t *testing.T) {
		as, config := signedServer(t, nil, jwksFile)
		config.Optional = true
		m, next := newMiddleware(t, config)
		rec := serve(m, func(r *http.Request) {
			r.Header.Set("X-Introspection-JWT", valid)
			r.Header["X_Introspection_Jwt"] = []string{"forged"}
		})
		if rec.Code != http.StatusOK || as.callCount() != 0 {
			t.Fatalf("status = %d, endpoint calls = %d; want 200 and none", rec.Code, as.callCount())
		}
		if got := next.lastRequest().Header; len(got) != 0 {
			t.Errorf("the backend got %v, want no header", got)
		}
	})
}

// TestSignedAnswerWindow: a signed answer must be issued during the call, from its start to
// timeout later, give or take clockSkew and the second iat is rounded down to.
func TestSignedAnswerWindow(t *testing.T) {
	jwksFile, _ := responseKeyFiles(t)
	keys, err := readPublicKeys(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	const iat = int64(1800000000)
	answer := []byte(signedAnswer(func(h, c map[string]interface{}) { c["iat"] = iat }))
	issued := iat * int64(time.Second)
	cases := []struct {
		desc      string
		clockSkew time.Duration
		start     time.Duration // when the call started, from iat
		ok        bool
	}{
		{"started within the second iat is rounded to", 0, 999 * time.Millisecond, true},
		{"started after iat's second", 0, 1001 * time.Millisecond, false},
		{"started 4.9 s before iat, timeout 5 s", 0, -4900 * time.Millisecond, true},
		{"started 5.1 s before iat, timeout 5 s", 0, -5100 * time.Millisecond, false},
		{"clockSkew 30 s, started 30.5 s after", 30 * time.Second, 30500 * time.Millisecond, true},
		{"clockSkew 30 s, started 31.5 s after", 30 * time.Second, 31500 * time.Millisecond, false},
		{"clockSkew 30 s, started 34.9 s before", 30 * time.Second, -34900 * time.Millisecond, true},
		{"clockSkew 30 s, started 35.1 s before", 30 * time.Second, -35100 * time.Millisecond, false},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			in := &introspector{clientID: "traefik", timeout: 5 * time.Second, clockSkew: int64(tc.clockSkew), responseKeys: keys, keysFrom: "responseKeysFile"}
			_, err := in.parseSigned(answer, keys, issued+int64(tc.start), keeping{})
			if (err == nil) != tc.ok {
				t.Errorf("accepted = %v (%v), want %v", err == nil, err, tc.ok)
			}
		})
	}
}

// insertInto puts s in the middle of part i (0 header, 1 claims, 2 signature) of a JWS.
func insertInto(token string, i int, s string) string {
	parts := strings.Split(token, ".")
	half := len(parts[i]) / 2
	parts[i] = parts[i][:half] + s + parts[i][half:]
	return strings.Join(parts, ".")
}

// base64URLAlphabet is RFC 4648 §5's alphabet, a character's index its 6-bit value.
const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// otherTrailingBits changes the last character of part i of a JWS to the one whose value
// differs in its lowest bit, which lies past the part's last byte when its length is not a
// multiple of 3: the part then decodes, leniently, to the same bytes.
func otherTrailingBits(t *testing.T, token string, i int) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[i])
	if len(raw)%3 == 0 {
		t.Fatalf("part %d is %d bytes: its last character has no unused bits", i, len(raw))
	}
	last := strings.IndexByte(base64URLAlphabet, parts[i][len(parts[i])-1])
	parts[i] = parts[i][:len(parts[i])-1] + string(base64URLAlphabet[last^1])
	again, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil || string(again) != string(raw) {
		t.Fatalf("part %d with another last character decodes to other bytes (%v)", i, err)
	}
	return strings.Join(parts, ".")
}

// TestSignedAnswerCanonical: RFC 7515 §2 writes every JWS part as base64url without padding,
// line breaks or whitespace. A lenient decoder reads an altered answer (CR or LF inside a
// part, other unused trailing bits, padding) as the same bytes, so its signature verifies;
// forwarded as is, the backend would get a JWT the server never sent, or a header value with
// CR/LF. Such an answer is the endpoint failing: 503, the backend never reached.
func TestSignedAnswerCanonical(t *testing.T) {
	jwksFile, _ := responseKeyFiles(t)
	keys, err := readPublicKeys(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	valid := signedAnswer(nil)
	sig := strings.Split(valid, ".")[2]
	if raw, _ := base64.RawURLEncoding.DecodeString(sig); len(raw) != 256 {
		t.Fatalf("the RS256 signature is %d bytes, want 256", len(raw))
	}
	cases := []struct {
		desc   string
		answer string
		status int
	}{
		{"unaltered", valid, 200},
		{"CR inside the claims", insertInto(valid, 1, "\r"), 503},
		{"LF inside the claims", insertInto(valid, 1, "\n"), 503},
		{"CRLF inside the claims", insertInto(valid, 1, "\r\n"), 503},
		{"CRLF inside the signature", insertInto(valid, 2, "\r\n"), 503},
		{"LF inside the header", insertInto(valid, 0, "\n"), 503},
		// 256 bytes are 85 groups of 3 and 1 byte, written as 2 characters of 6 + 2 bits:
		// the last character's 4 low bits are unused, 0 in the canonical form.
		{"the signature's last character with other trailing bits", otherTrailingBits(t, valid, 2), 503},
		{"the signature padded with ==", valid + "==", 503},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			if tc.status != http.StatusOK {
				_, _, err := verifyJWS(strings.TrimSpace(tc.answer), keys)
				if err == nil || !strings.Contains(err.Error(), "not canonical base64url") {
					t.Errorf("verifyJWS: %v, want an error saying not canonical base64url", err)
				} else if strings.Contains(err.Error(), sig[:16]) {
					t.Errorf("verifyJWS's error %q shows the answer", err)
				}
			}

			as, config := signedServer(t, tc.answer, jwksFile)
			m, next := newMiddleware(t, config)
			for i := 1; i <= 2; i++ {
				if rec := serve(m, bearer("tok")); rec.Code != tc.status {
					t.Fatalf("request %d: status = %d, want %d", i, rec.Code, tc.status)
				}
			}
			if tc.status != http.StatusOK {
				if as.callCount() != 2 || next.count() != 0 {
					t.Errorf("endpoint calls = %d, backend requests = %d; want 2 (never cached) and 0", as.callCount(), next.count())
				}
				return
			}
			if as.callCount() != 1 || next.count() != 2 {
				t.Errorf("endpoint calls = %d, backend requests = %d; want 1 and 2", as.callCount(), next.count())
			}
			if got := next.lastRequest().Header["X-Introspection-Jwt"]; len(got) != 1 || got[0] != valid {
				t.Fatalf("X-Introspection-JWT = %q, want exactly the JWT the server sent", got)
			}
			verifiedByServerKeys(t, next.lastRequest().Header.Get("X-Introspection-Jwt"))
		})
	}
}

// TestResponseKeysRefusePrivate: responseKeysFile holds the server's public keys. A private
// key there (a JWK with "d" or another private member, RFC 7518 §6.2.2 and §6.3.2, or a
// PEM private key) is a mistake that spreads a secret: New fails, naming the key, never
// showing its material.
func TestResponseKeysRefusePrivate(t *testing.T) {
	b64 := base64.RawURLEncoding
	bytesOf := func(n *big.Int) string { return b64.EncodeToString(n.Bytes()) }
	rsaMembers := `"kid":"` + rsaKid + `","alg":"RS256"`
	rsaPublic := publicJWK(testRSAKey, rsaMembers)
	primes := testRSAKey.Primes
	rsaPrivate := publicJWK(testRSAKey, rsaMembers+`,"d":"`+bytesOf(testRSAKey.D)+`","p":"`+bytesOf(primes[0])+`","q":"`+bytesOf(primes[1])+
		`","dp":"`+bytesOf(testRSAKey.Precomputed.Dp)+`","dq":"`+bytesOf(testRSAKey.Precomputed.Dq)+
		`","qi":"`+bytesOf(testRSAKey.Precomputed.Qinv)+`"`)
	ecMembers := `"kid":"` + ecKid + `"`
	ecPublic := publicJWK(testECKey, ecMembers)
	ecD := b64.EncodeToString(testECKey.D.FillBytes(make([]byte, curveSize["P-256"])))
	ecPrivate := publicJWK(testECKey, ecMembers+`,"d":"`+ecD+`"`)
	secrets := []string{bytesOf(testRSAKey.D), bytesOf(primes[0]), bytesOf(primes[1]), bytesOf(testRSAKey.Precomputed.Dp),
		bytesOf(testRSAKey.Precomputed.Dq), bytesOf(testRSAKey.Precomputed.Qinv), ecD}

	cases := []struct {
		desc string
		file string
		want string
	}{
		{"an RSA JWK with d in a JWK Set", writeFile(t, "rsa-set.json", `{"keys":[`+rsaPrivate+`,`+ecPublic+`]}`),
			`key 0 (kid "as-rsa") is a private key`},
		{"an EC JWK with d in a JWK Set", writeFile(t, "ec-set.json", `{"keys":[`+rsaPublic+`,`+ecPrivate+`]}`),
			`key 1 (kid "as-ec") is a private key`},
		{"an RSA JWK with d", writeFile(t, "rsa.json", rsaPrivate), `key 0 (kid "as-rsa") is a private key`},
		{"an EC JWK with d", writeFile(t, "ec.json", ecPrivate), `key 0 (kid "as-ec") is a private key`},
		{"an RSA JWK with p and q only", writeFile(t, "pq.json", `{"keys":[`+publicJWK(testRSAKey, rsaMembers+`,"p":"`+bytesOf(primes[0])+`","q":"`+bytesOf(primes[1])+`"`)+`]}`),
			`key 0 (kid "as-rsa") is a private key`},
		{"an RSA JWK with oth", writeFile(t, "oth.json", publicJWK(testRSAKey, rsaMembers+`,"oth":[{"r":"AQAB","d":"AQAB","t":"AQAB"}]`)),
			`key 0 (kid "as-rsa") is a private key`},
		{"a private JWK marked for encryption", writeFile(t, "enc.json", `{"keys":[`+rsaPublic+`,`+publicJWK(testECKey, ecMembers+`,"d":"`+ecD+`","use":"enc"`)+`]}`),
			`key 1 (kid "as-ec") is a private key`},
		{"a PKCS #8 PEM private key", privateKeyFile(t, testECKey, true), `holds a "PRIVATE KEY" block`},
		{"a SEC 1 PEM private key", privateKeyFile(t, testECKey, false), `holds a "EC PRIVATE KEY" block`},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig("https://auth.example/introspect")
			config.ResponseFormat = "jwt"
			config.ResponseKeysFile = tc.file
			_, err := New(context.Background(), &backend{}, config, "auth@test")
			if err == nil {
				t.Fatalf("New accepted the private key, want an error with %q", tc.want)
			}
			if want := `responseKeysFile "` + tc.file + `": ` + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if strings.HasSuffix(tc.file, ".json") && !strings.Contains(err.Error(), "give the public key only") {
				t.Errorf("error %q does not say to give the public key only", err)
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows key material", err)
				}
			}
		})
	}
}

// TestSignedAnswerCache: a cached signed answer is used, and forwarded, only as long as
// the answer itself and the instance reading it would accept it: never past its own exp,
// never by an instance whose issuers or responseKeysFile would have refused it.
func TestSignedAnswerCache(t *testing.T) {
	jwksFile, _ := responseKeyFiles(t)

	t.Run("not past its own exp", func(t *testing.T) {
		as, config := signedServer(t, signedAnswer(func(h, c map[string]interface{}) {
			c["exp"] = time.Now().Add(10 * time.Second).Unix()
		}), jwksFile)
		m, next := newMiddleware(t, config) // cacheTTL 30s
		clk := &clock{t: time.Now()}
		m.now = clk.now
		serve(m, bearer("tok"))
		clk.advance(11 * time.Second)
		if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || as.callCount() != 2 || next.count() != 2 {
			t.Errorf("11 s later: status = %d, endpoint calls = %d, backend requests = %d; want 200, 2 and 2",
				rec.Code, as.callCount(), next.count())
		}
	})

	t.Run("checked against each instance's issuers", func(t *testing.T) {
		// Signed by https://issuer.example, for a token of https://other.example.
		_, config := signedServer(t, signedAnswer(func(h, c map[string]interface{}) {
			c["token_introspection"] = withClaim("iss", "https://other.example")
		}), jwksFile)
		open, _ := newMiddleware(t, config)
		strict := *config
		strict.Issuers = []string{"https://other.example"}
		closed, next := newMiddleware(t, &strict)
		if rec := serve(open, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("without issuers: status = %d, want 200", rec.Code)
		}
		if rec := serve(closed, bearer("tok")); rec.Code != http.StatusServiceUnavailable || next.count() != 0 {
			t.Errorf("issuers without the answer's iss: status = %d, backend requests = %d; want 503 and 0", rec.Code, next.count())
		}
	})

	t.Run("checked against what responseKeysFile holds now", func(t *testing.T) {
		jwks, err := os.ReadFile(jwksFile)
		if err != nil {
			t.Fatal(err)
		}
		// Signed with the RSA key, checked with a copy of the keys that can change.
		_, config := signedServer(t, signedAnswer(nil), writeFile(t, "keys.json", string(jwks)))
		before, _ := newMiddleware(t, config)
		if rec := serve(before, bearer("tok")); rec.Code != http.StatusOK {
			t.Fatalf("with the RSA key: status = %d, want 200", rec.Code)
		}
		// The same file, now holding only the EC key: a reload must not trust what the RSA
		// key verified.
		if err := os.WriteFile(config.ResponseKeysFile, publicPEM(testECKey), 0o600); err != nil {
			t.Fatal(err)
		}
		after, next := newMiddleware(t, config)
		if rec := serve(after, bearer("tok")); rec.Code != http.StatusServiceUnavailable || next.count() != 0 {
			t.Errorf("after the key file changed: status = %d, backend requests = %d; want 503 and 0", rec.Code, next.count())
		}
	})
}
