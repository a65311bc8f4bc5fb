package introspection

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzExtract: whatever the Authorization header holds, extraction never panics, only ever
// yields a b64token within maxTokenLength, and its one-regexp fast path answers exactly as
// the step-by-step reading does.
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer  abc==", "Bearer", "Bearer ", "Bearer\tabc", "Bearerish abc",
		"Basic dXNlcjpwYXNz", "Bearer a b", "Bearer =", "Bearer \xff", "", "B", "Bearer abc\n",
		"BEARER " + strings.Repeat("a", 64), "Bearer " + strings.Repeat("a", 65), "Bearer a=b",
		"DPoP abc", "dpop  abc==", "DPoP", "DPoP\tabc", "DPoPish abc", "DPOP " + strings.Repeat("a", 65),
	} {
		f.Add(seed)
	}
	fast := &middleware{tokenHeader: "Authorization", bearerScheme: true, bearerOnly: true, dpopScheme: true, maxTokenLength: 64}
	steps := &middleware{tokenHeader: "Authorization", bearerScheme: true, dpopScheme: true, maxTokenLength: 64}
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest("GET", "http://api.example/", nil)
		req.Header["Authorization"] = []string{value}
		token, dpop, rej := fast.extract(req)
		if stepToken, stepDPoP, stepRej := steps.extract(req); token != stepToken || dpop != stepDPoP || rej != stepRej {
			t.Fatalf("%q: the fast path gives %q, %v, %v; the steps %q, %v, %v", value, token, dpop, rej, stepToken, stepDPoP, stepRej)
		}
		if rej != nil {
			if token != "" {
				t.Fatalf("a rejection with a token %q", token)
			}
			return
		}
		if len(token) > 64 || !isB64token(token) || !strings.HasSuffix(value, token) {
			t.Fatalf("extracted %q from %q", token, value)
		}
	})
}

// FuzzParseResult: whatever the endpoint answers, parsing never panics, and a result is
// active only when the answer's "active" is the JSON true.
func FuzzParseResult(f *testing.F) {
	for _, seed := range []string{
		`{"active":true}`, `{"active":false}`, `{"active":"true"}`, `{"active":1}`, `{}`, `[]`, `null`,
		`{"active":true,"exp":1e308,"nbf":"12","aud":["a",1],"scope":["a",{}],"iss":7}`,
		`{"active":true,"exp":"NaN"}`, `{"active":true,"scope":"  a  b "}`, `{"active":true}x`,
		`{"active":false,"active":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseResult(data, keeping{claims: []string{"active", "sub", "aud", "scope"}})
		if err != nil {
			if res != nil {
				t.Fatalf("an error with a result")
			}
			return
		}
		if res.active && res.claims["active"] != "true" {
			t.Fatalf("active result from %q", data)
		}
		for name, value := range res.claims {
			if strings.ContainsAny(value, controlChars) {
				t.Fatalf("claim %q kept as %q, not a header value", name, value)
			}
		}
	})
}

// FuzzSignedAnswer: whatever a responseFormat jwt endpoint answers, reading it never panics,
// and an answer is accepted only if the server's key signed it, as the standard library
// checks on its own: the fuzzer can mangle everything but cannot sign.
func FuzzSignedAnswer(f *testing.F) {
	const iat = int64(1800000000)
	at := func(h, c map[string]interface{}) { c["iat"] = iat }
	for _, seed := range []string{
		signedAnswer(at), " " + signedAnswer(at) + "\n", flip(signedAnswer(at), 2), "a.b.c", "..", "",
		jws(map[string]interface{}{"alg": "none", "typ": "token-introspection+jwt"}, map[string]interface{}{"iat": iat}, nil),
		jws(map[string]interface{}{"alg": "ES256", "typ": "token-introspection+jwt", "kid": ecKid},
			map[string]interface{}{"iss": "i", "aud": "traefik", "iat": iat, "token_introspection": map[string]interface{}{"active": true}},
			signAs("ES", crypto.SHA256, testECKey)),
	} {
		f.Add([]byte(seed))
	}
	jwksFile, _ := responseKeyFiles(f)
	keys, err := readPublicKeys(jwksFile)
	if err != nil {
		f.Fatal(err)
	}
	in := &introspector{clientID: "traefik", timeout: 5 * time.Second, clockSkew: int64(30 * time.Second), responseKeys: keys, keysFrom: "responseKeysFile"}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := in.parseSigned(data, keys, iat*int64(time.Second), keeping{signed: true})
		if err != nil {
			return
		}
		if res.active && res.signed != strings.TrimSpace(string(data)) {
			t.Fatalf("forwarded %q, not the answer", res.signed)
		}
		verifiedByServerKeys(t, strings.TrimSpace(string(data)))
	})
}

// FuzzConfig: whatever configuration Traefik decodes (the fuzzer writes it as JSON, the
// form a CRD takes), New never panics and allocates nothing in proportion to cacheSize, its
// errors name a key and never show the secret, and a middleware it accepts answers a request
// without a token with a well-formed 401. File paths point at one small file: the fuzzer
// may not read the disk.
func FuzzConfig(f *testing.F) {
	for _, seed := range []string{
		`{"endpoint":"https://auth.example/introspect","clientId":"app","clientSecret":"x"}`,
		`{"endpoint":"http://127.0.0.1:9/i","authMethod":"none","cacheSize":1,"maxTokenLength":1}`,
		`{"endpoint":"https://a/","clientId":"a","clientSecret":"b","timeout":"1ns","clockSkew":"2562047h",` +
			`"cacheTTL":"0s","negativeCacheTTL":"1h","staleIfError":"1m","realm":"api","maxConcurrentIntrospections":1}`,
		`{"endpoint":"https://a/","clientId":"a","clientSecretFile":"f","caFile":"f","tokenHeader":"X_Token",` +
			`"tokenQuery":"t","tokenCookie":"c","forwardHeaders":{"X-Sub":"sub","x.sub":"sub"},"headers":{"Host":"h","X-T":"1"}}`,
		`{"endpoint":"https://a/","clientId":"a","clientSecret":"b","requiredScopes":["read write"," "],"audiences":["x"],"issuers":[""]}`,
		`{"endpoint":"https://u:p@a/","authMethod":"client_secret_post"}`,
		`{"endpoint":"https://a/","clientId":"a","authMethod":"private_key_jwt","privateKeyFile":"k","signingAlg":"PS256","keyId":"1",` +
			`"assertionAudience":"https://a","responseFormat":"jwt","responseKeysFile":"k","forwardIntrospectionJWT":"X-Jwt","optional":true}`,
		`{"endpoint":"https://a/","clientId":"a","authMethod":"tls_client_auth","tlsCertFile":"c","tlsKeyFile":"k"}`,
		`{"endpoint":"https://a/","clientId":"a","clientSecret":"b","claims":"Equals(` + "`a.b`, `1`" + `) || !OneOf(` + "`c`, `d`" + `)",` +
			`"errorDescription":true,"logRejections":true,"resourceMetadata":{"resource":"https://api/mcp","scopes_supported":"a,b","x":[1]}}`,
	} {
		f.Add([]byte(seed))
	}
	file := writeFile(f, "file", fuzzSecret+"\n")
	rsaKey := privateKeyFile(f, testRSAKey, false)
	jwks := writeFile(f, "jwks.json", `{"keys":[`+publicJWK(testRSAKey, "")+`]}`)
	certFile, certKey := writeCertFiles(f, testCert(f, "fuzz", nil, x509.ExtKeyUsageClientAuth))
	keys := configKeys()
	f.Fuzz(func(t *testing.T, data []byte) {
		config := CreateConfig()
		if json.Unmarshal(data, config) != nil || strings.Contains(string(data), fuzzSecret) {
			return
		}
		if config.ClientSecret != "" {
			config.ClientSecret = fuzzSecret
		}
		if config.ClientSecretFile != "" {
			config.ClientSecretFile = file
		}
		if config.CAFile != "" {
			config.CAFile = file
		}
		for _, path := range []struct {
			key  *string
			file string
		}{
			{&config.PrivateKeyFile, rsaKey}, {&config.ResponseKeysFile, jwks},
			{&config.TLSCertFile, certFile}, {&config.TLSKeyFile, certKey},
		} {
			if *path.key != "" {
				*path.key = path.file
			}
		}
		handler, err := New(context.Background(), http.NotFoundHandler(), config, "fuzz")
		forgetStates("") // the fuzzer invents endpoints by the thousand
		if err != nil {
			if strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("the error shows the secret: %v", err)
			}
			if !namesAny(err.Error(), keys) {
				t.Fatalf("the error names no key: %v", err)
			}
			return
		}
		m, _ := handler.(*middleware)
		if md, documented := handler.(*resourceMetadata); documented {
			m = md.next
		}
		if n := cap(m.state.cache.slots); n > 0 {
			t.Fatalf("New made room for %d cache entries before any came", n)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://api.example/", nil))
		challenge := rec.Header().Get("WWW-Authenticate")
		if config.Optional {
			if rec.Code != http.StatusNotFound || challenge != "" {
				t.Fatalf("optional, no token: status %d, challenge %q; want the next handler's 404", rec.Code, challenge)
			}
			return
		}
		if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(challenge, `Bearer realm="`) || strings.ContainsAny(challenge, controlChars) {
			t.Fatalf("no token: status %d, challenge %q", rec.Code, challenge)
		}
	})
}

const fuzzSecret = "fuzz-secret-marker"

// configKeys lists the keys as users write them, from the mapstructure tags.
func configKeys() []string {
	typ := reflect.TypeOf(Config{})
	names := make([]string, 0, typ.NumField())
	for i := 0; i < typ.NumField(); i++ {
		names = append(names, typ.Field(i).Tag.Get("mapstructure"))
	}
	return names
}

func namesAny(s string, keys []string) bool {
	for _, key := range keys {
		if strings.Contains(s, key) {
			return true
		}
	}
	return false
}
