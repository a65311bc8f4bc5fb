package introspection

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"
)

// The keys of the curves only ES384 and ES512 use. One value per declaration (yaegi).
var (
	testP384Key = mustKey(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)).(*ecdsa.PrivateKey)
	testP521Key = mustKey(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)).(*ecdsa.PrivateKey)
)

// rsSize is the size in bytes of R and of S in a JWS ECDSA signature (RFC 7518 §3.4).
var rsSize = map[string]int{"P-256": 32, "P-384": 48, "P-521": 66}

// advertisedAlg is an algorithm the README advertises, spelled out here apart from jwsAlgs,
// so that a wrong hash, family or curve there fails here.
type advertisedAlg struct {
	name      string
	hash      crypto.Hash
	key       interface{} // the private key it takes: *rsa.PrivateKey or *ecdsa.PrivateKey
	sigSize   int         // bytes of the signature: the RSA modulus, or R||S
	assertion bool        // signingAlg may be it (README, Configuration)
	otherHash crypto.Hash // a hash of the same family that is not the algorithm's
	stranger  interface{} // an EC key of another kind or curve than the algorithm takes
}

func advertisedAlgs() []advertisedAlg {
	return []advertisedAlg{
		{name: "RS256", hash: crypto.SHA256, key: testRSAKey, sigSize: 256, assertion: true, otherHash: crypto.SHA384, stranger: testECKey},
		{name: "RS384", hash: crypto.SHA384, key: testRSAKey, sigSize: 256, otherHash: crypto.SHA512, stranger: testECKey},
		{name: "RS512", hash: crypto.SHA512, key: testRSAKey, sigSize: 256, otherHash: crypto.SHA256, stranger: testECKey},
		{name: "PS256", hash: crypto.SHA256, key: testRSAKey, sigSize: 256, assertion: true, otherHash: crypto.SHA384, stranger: testECKey},
		{name: "PS384", hash: crypto.SHA384, key: testRSAKey, sigSize: 256, otherHash: crypto.SHA512, stranger: testECKey},
		{name: "PS512", hash: crypto.SHA512, key: testRSAKey, sigSize: 256, otherHash: crypto.SHA256, stranger: testECKey},
		{name: "ES256", hash: crypto.SHA256, key: testECKey, sigSize: 64, assertion: true, otherHash: crypto.SHA384, stranger: testP384Key},
		{name: "ES384", hash: crypto.SHA384, key: testP384Key, sigSize: 96, otherHash: crypto.SHA512, stranger: testP521Key},
		{name: "ES512", hash: crypto.SHA512, key: testP521Key, sigSize: 132, otherHash: crypto.SHA256, stranger: testECKey},
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

func digestOf(hash crypto.Hash, input []byte) []byte {
	h := hash.New()
	h.Write(input)
	return h.Sum(nil)
}

// signAs signs as the family ("RS", "PS" or "ES") does with hash and key; an ECDSA
// signature is R||S, each of the curve's size.
func signAs(family string, hash crypto.Hash, key interface{}) func([]byte) []byte {
	return func(input []byte) []byte {
		digest := digestOf(hash, input)
		var sig []byte
		switch family {
		case "RS":
			sig, _ = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), hash, digest)
		case "PS":
			sig, _ = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case "ES":
			k := key.(*ecdsa.PrivateKey)
			size := rsSize[k.Curve.Params().Name]
			r, s, _ := ecdsa.Sign(rand.Reader, k, digest)
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
		return sig
	}
}

// verifiesAs says whether sig over input verifies by a with a's key.
func verifiesAs(a advertisedAlg, input, sig []byte) bool {
	digest := digestOf(a.hash, input)
	switch a.name[:2] {
	case "RS":
		return rsa.VerifyPKCS1v15(&a.key.(*rsa.PrivateKey).PublicKey, a.hash, digest, sig) == nil
	case "PS":
		return rsa.VerifyPSS(&a.key.(*rsa.PrivateKey).PublicKey, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case "ES":
		half := len(sig) / 2
		return ecdsa.Verify(&a.key.(*ecdsa.PrivateKey).PublicKey, digest, new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:]))
	}
	return false
}

// privateKeyFile writes key as PEM: PKCS #1 for RSA, SEC 1 for EC.
func privateKeyFile(t *testing.T, key interface{}) string {
	t.Helper()
	if k, ok := key.(*rsa.PrivateKey); ok {
		return writePEM(t, "rsa.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
	}
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "ec.pem", "EC PRIVATE KEY", der)
}

// publicKeyFiles writes the public half of key for responseKeysFile, as a JWK Set whose
// key names no alg, and as PEM.
func publicKeyFiles(t *testing.T, key interface{}) (string, string) {
	t.Helper()
	b64 := base64.RawURLEncoding
	var jwk string
	var public interface{}
	if k, ok := key.(*rsa.PrivateKey); ok {
		jwk = `{"kty":"RSA","n":"` + b64.EncodeToString(k.N.Bytes()) + `","e":"AQAB"}`
		public = &k.PublicKey
	} else {
		k := key.(*ecdsa.PrivateKey)
		name := k.Curve.Params().Name
		size := rsSize[name]
		jwk = `{"kty":"EC","crv":"` + name + `","x":"` + b64.EncodeToString(k.X.FillBytes(make([]byte, size))) +
			`","y":"` + b64.EncodeToString(k.Y.FillBytes(make([]byte, size))) + `"}`
		public = &k.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "keys.json", `{"keys":[`+jwk+`]}`), writePEM(t, "keys.pem", "PUBLIC KEY", der)
}

// keyName says what key is, for test names.
func keyName(key interface{}) string {
	if _, ok := key.(*rsa.PrivateKey); ok {
		return "RSA"
	}
	return key.(*ecdsa.PrivateKey).Curve.Params().Name
}

// TestAssertionAlgs: every advertised algorithm, as signingAlg of a private_key_jwt client
// assertion. Those the README offers for signingAlg (RS256, PS256, ES256) sign an assertion
// the endpoint can verify with the public key, with the alg in its header and a signature of
// the right size (ES256: R||S, 32 bytes each, RFC 7518 §3.4). The others, and a key the
// algorithm cannot use, make New fail with an error that names the key and the value.
func TestAssertionAlgs(t *testing.T) {
	weakRSA := mustKey(rsa.GenerateKey(rand.Reader, 1024)).(*rsa.PrivateKey)
	type row struct {
		desc    string
		alg     advertisedAlg
		key     interface{}
		wantErr string // "" when the assertion is signed
		ofFile  bool   // wantErr follows privateKeyFile "<the file>"
	}
	var cases []row
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
			config.PrivateKeyFile = privateKeyFile(t, tc.key)
			config.SigningAlg = tc.alg.name
			config.KeyID = "gw-1"

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
			header, claims, input, sig := decodeJWS(t, form.Get("client_assertion"))
			if header["alg"] != tc.alg.name || header["typ"] != "JWT" || header["kid"] != "gw-1" {
				t.Errorf("header = %v, want alg %s, typ JWT, kid gw-1", header, tc.alg.name)
			}
			if claims["iss"] != "traefik" {
				t.Errorf("iss = %v, want traefik", claims["iss"])
			}
			if len(sig) != tc.alg.sigSize {
				t.Errorf("the signature is %d bytes, want %d", len(sig), tc.alg.sigSize)
			}
			if !verifiesAs(tc.alg, input, sig) {
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
		jwksFile, pemFile := publicKeyFiles(t, tc.keys)
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
