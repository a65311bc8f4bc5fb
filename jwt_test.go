package introspection

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
)

// The keys of the curves only ES384 and ES512 use. One value per declaration (yaegi).
var (
	testP384Key = mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)).(*ecdsa.PrivateKey)
	testP521Key = mustKey(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)).(*ecdsa.PrivateKey)
)

// advertisedAlg is an algorithm the README advertises, spelled out here apart from jwsAlgs,
// so that a wrong hash, family or curve there fails here.
type advertisedAlg struct {
	name      string
	hash      crypto.Hash
	key       interface{} // the private key it takes: *rsa.PrivateKey or *ecdsa.PrivateKey
	assertion bool        // signingAlg may be it (README, Configuration)
	otherHash crypto.Hash // a hash of the same family that is not the algorithm's
	stranger  interface{} // an EC key of another kind or curve than the algorithm takes
}

func advertisedAlgs() []advertisedAlg {
	return []advertisedAlg{
		{name: "RS256", hash: crypto.SHA256, key: testRSAKey, assertion: true, otherHash: crypto.SHA384, stranger: testECKey},
		{name: "RS384", hash: crypto.SHA384, key: testRSAKey, otherHash: crypto.SHA512, stranger: testECKey},
		{name: "RS512", hash: crypto.SHA512, key: testRSAKey, otherHash: crypto.SHA256, stranger: testECKey},
		{name: "PS256", hash: crypto.SHA256, key: testRSAKey, assertion: true, otherHash: crypto.SHA384, stranger: testECKey},
		{name: "PS384", hash: crypto.SHA384, key: testRSAKey, otherHash: crypto.SHA512, stranger: testECKey},
		{name: "PS512", hash: crypto.SHA512, key: testRSAKey, otherHash: crypto.SHA256, stranger: testECKey},
		{name: "ES256", hash: crypto.SHA256, key: testECKey, assertion: true, otherHash: crypto.SHA384, stranger: testP384Key},
		{name: "ES384", hash: crypto.SHA384, key: testP384Key, otherHash: crypto.SHA512, stranger: testP521Key},
		{name: "ES512", hash: crypto.SHA512, key: testP521Key, otherHash: crypto.SHA256, stranger: testECKey},
	}
}

// advertised is the entry of advertisedAlgs called name.
func advertised(name string) advertisedAlg {
	algs := advertisedAlgs()
	for i := 0; i < len(algs); i++ {
		if algs[i].name == name {
			return algs[i]
		}
	}
	panic("no advertised algorithm " + name)
}

// sigSize is the size in bytes of the algorithm's signatures: the RSA modulus, or R||S.
func (a advertisedAlg) sigSize() int {
	if k, ok := a.key.(*rsa.PrivateKey); ok {
		return k.Size()
	}
	return 2 * curveSize[a.key.(*ecdsa.PrivateKey).Curve.Params().Name]
}

// keyName says what key is, for test names.
func keyName(key interface{}) string {
	if _, ok := key.(*rsa.PrivateKey); ok {
		return "RSA"
	}
	return key.(*ecdsa.PrivateKey).Curve.Params().Name
}

// TestAssertionAlgs: every advertised algorithm, as signingAlg of a private_key_jwt client
// assertion. Those the README offers for signingAlg (RS256, the default, PS256, ES256) sign
// an assertion the endpoint can verify with the public key, with the alg in its header and a
// signature of the right size (ES256: R||S, 32 bytes each, RFC 7518 §3.4). The others, an
// unknown one, and a key the algorithm cannot use, make New fail with an error that names
// the key and the value. TestClientAssertion covers the assertion's claims and the key's forms.
func TestAssertionAlgs(t *testing.T) {
	weakRSA := mustKey(rsa.GenerateKey(rand.Reader, 1024)).(*rsa.PrivateKey)
	type row struct {
		desc      string
		alg       advertisedAlg
		key       interface{}
		byDefault bool   // signingAlg keeps CreateConfig's value
		wantErr   string // "" when the assertion is signed
		ofFile    bool   // wantErr follows privateKeyFile "<the file>"
	}
	cases := []row{
		{desc: "RS256 by default", alg: advertised("RS256"), key: testRSAKey, byDefault: true},
		{desc: "HS256, client_secret_jwt's", alg: advertisedAlg{name: "HS256"}, key: testRSAKey,
			wantErr: `signingAlg "HS256" is not one of RS256, PS256, ES256 (for authMethod "private_key_jwt")`},
	}
	for _, a := range advertisedAlgs() {
		if !a.assertion {
			cases = append(cases, row{desc: a.name + " (answers only)", alg: a, key: a.key,
				wantErr: `signingAlg "` + a.name + `" is not one of RS256, PS256, ES256`})
			continue
		}
		needs := "an RSA key"
		if a.name[:2] == "ES" {
			needs = "an EC " + keyName(a.key) + " key"
		}
		cases = append(cases,
			row{desc: a.name, alg: a, key: a.key},
			row{desc: a.name + " with a " + keyName(a.stranger) + " key", alg: a, key: a.stranger, ofFile: true,
				wantErr: `holds an EC ` + keyName(a.stranger) + ` key; signingAlg "` + a.name + `" needs ` + needs})
	}
	cases = append(cases,
		row{desc: "ES256 with a P-521 key", alg: advertised("ES256"), key: testP521Key, ofFile: true,
			wantErr: `holds an EC P-521 key; signingAlg "ES256" needs an EC P-256 key`},
		row{desc: "ES256 with an RSA key", alg: advertised("ES256"), key: testRSAKey, ofFile: true,
			wantErr: `holds an RSA key; signingAlg "ES256" needs an EC P-256 key`},
		row{desc: "PS256 with a 1024-bit RSA key", alg: advertised("PS256"), key: weakRSA, ofFile: true,
			wantErr: `holds a 1024-bit RSA key; signingAlg "PS256" needs 2048 bits or more`},
	)

	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("tok", activeClaims())
			config := testConfig(as.URL)
			config.ClientSecret = ""
			config.AuthMethod = "private_key_jwt"
			config.PrivateKeyFile = privateKeyFile(t, tc.key, false)
			if !tc.byDefault {
				config.SigningAlg = tc.alg.name
			}

			if tc.wantErr != "" {
				want := tc.wantErr
				if tc.ofFile {
					want = `privateKeyFile "` + config.PrivateKeyFile + `" ` + want
				}
				if _, err := New(context.Background(), &backend{}, config, "auth@test"); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("New: %v, want an error with %q", err, want)
				}
				return
			}

			m, _ := newMiddleware(t, config)
			if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			_, form := as.lastCall()
			header, _, input, sig := decodeJWS(t, form.Get("client_assertion"))
			if header["alg"] != tc.alg.name || header["typ"] != "JWT" {
				t.Errorf("header = %v, want alg %s, typ JWT", header, tc.alg.name)
			}
			if len(sig) != tc.alg.sigSize() {
				t.Errorf("the signature is %d bytes, want %d", len(sig), tc.alg.sigSize())
			}
			if !verifiesAs(tc.alg.name[:2], tc.alg.hash, tc.key, input, sig) {
				t.Errorf("the assertion does not verify by %s with the public key", tc.alg.name)
			}
		})
	}
}

// TestAnswerAlgs: every advertised algorithm, on a signed answer (RFC 9701) checked with
// responseKeysFile as a JWK Set and as PEM. An answer signed by the algorithm with its key
// reaches the backend. One whose signature the header's alg did not make (another hash,
// the other RSA padding) or made with a key of another kind or curve, present in the file,
// is the endpoint failing: 503, the backend never reached.
func TestAnswerAlgs(t *testing.T) {
	swapped := map[string]string{"RS": "PS", "PS": "RS"}
	type row struct {
		desc   string
		alg    string // the header's
		sign   func([]byte) []byte
		keys   interface{} // the key whose public half responseKeysFile holds
		status int
	}
	var cases []row
	for _, a := range advertisedAlgs() {
		family := a.name[:2]
		cases = append(cases,
			row{a.name, a.name, signAs(family, a.hash, a.key), a.key, http.StatusOK},
			row{a.name + " over a signature with " + a.otherHash.String(), a.name, signAs(family, a.otherHash, a.key), a.key, http.StatusServiceUnavailable},
			row{a.name + " signed by a " + keyName(a.stranger) + " key", a.name, signAs("ES", a.hash, a.stranger), a.stranger, http.StatusServiceUnavailable},
		)
		if other := swapped[family]; other != "" {
			cases = append(cases, row{a.name + " over a " + other + " signature", a.name, signAs(other, a.hash, a.key), a.key, http.StatusServiceUnavailable})
		}
	}

	for _, tc := range cases {
		tc := tc
		answer := jws(map[string]interface{}{"alg": tc.alg, "typ": "token-introspection+jwt"}, signedClaims(), tc.sign)
		jwksFile, pemFile := publicKeyFiles(t, []string{publicJWK(tc.keys, "")}, tc.keys)
		for _, file := range []string{jwksFile, pemFile} {
			file := file
			t.Run(tc.desc+", "+file[strings.LastIndexByte(file, '.')+1:], func(t *testing.T) {
				_, config := signedServer(t, answer, file)
				m, next := newMiddleware(t, config)
				if rec := serve(m, bearer("tok")); rec.Code != tc.status {
					t.Fatalf("status = %d, want %d", rec.Code, tc.status)
				}
				if tc.status != http.StatusOK {
					if next.count() != 0 {
						t.Errorf("the backend was reached")
					}
					return
				}
				if got := next.lastRequest().Header.Get("X-Introspection-Jwt"); got != answer {
					t.Errorf("X-Introspection-JWT = %q, want the signed answer", got)
				}
			})
		}
	}
}

// TestResponseKeyCurves: a JWK on a curve no algorithm uses makes New fail, naming the file,
// the key and the curve.
func TestResponseKeyCurves(t *testing.T) {
	file := writeFile(t, "p224.json", `{"keys":[{"kty":"EC","kid":"old","crv":"P-224","x":"AQAB","y":"AQAB"}]}`)
	config := testConfig("https://auth.example/introspect")
	config.ResponseFormat, config.ResponseKeysFile = "jwt", file
	_, err := New(context.Background(), &backend{}, config, "auth@test")
	want := `responseKeysFile "` + file + `": key 0 (kid "old"): curve "P-224" is not one of P-256, P-384, P-521`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("New: %v, want an error with %q", err, want)
	}
}
