package introspection

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNewErrors: a bad configuration is an error that names the key and the value and
// never shows the secret.
func TestNewErrors(t *testing.T) {
	missing := filepath.Join(os.TempDir(), "no-such-tokengate-file")
	notPEM := writeFile(t, "not.pem", "hello")
	rsaFile := privateKeyFile(t, testRSAKey, false)
	ecFile := privateKeyFile(t, testECKey, false)
	certFile, keyFile := writeCertFiles(t, testCert(t, "traefik", nil, x509.ExtKeyUsageClientAuth))
	keysFile, _ := responseKeyFiles(t)
	hmacFile := writeFile(t, "hmac.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
	weakKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakFile := writeFile(t, "weak.pem", string(publicPEM(weakKey)))
	// Not calls inside the cases' multiple assignments: yaegi v0.16.1 then sets only the
	// call's target.
	secret32 := strings.Repeat("s", 32)
	sharedKey := writeFile(t, "shared.key", "s3cret-value"+strings.Repeat("k", 20))
	shortKey := writeFile(t, "short.key", "s3cret-value"+strings.Repeat("k", 19)+"\n")
	empty := writeFile(t, "empty", "\n")
	redis := func(c *Config, url string) { c.SharedCache, c.SharedCacheKeyFile = url, sharedKey }
	secret64 := strings.Repeat("s", 64)
	cases := []struct {
		desc      string
		configure func(*Config)
		want      string
	}{
		{"endpoint missing", func(c *Config) { c.Endpoint = "" }, "endpoint is missing"},
		{"endpoint not a URL", func(c *Config) { c.Endpoint = "auth.example/introspect" }, `endpoint "auth.example/introspect"`},
		{"endpoint ftp", func(c *Config) { c.Endpoint = "ftp://auth.example/" }, `endpoint "ftp://auth.example/"`},
		{"endpoint with credentials", func(c *Config) { c.Endpoint = "https://u:pw@auth.example/" }, `endpoint "<userinfo>@auth.example/" carries credentials`},
		{"endpoint ftp with credentials", func(c *Config) { c.Endpoint = "ftp://u:pw@auth.example/" }, `endpoint "<userinfo>@auth.example/"`},
		{"endpoint unparsable with credentials", func(c *Config) { c.Endpoint = "http://u:pw@auth.example:port/" }, `endpoint "<userinfo>@auth.example:port/"`},
		{"authMethod unknown", func(c *Config) { c.AuthMethod = "client_secret_jwk" }, `authMethod "client_secret_jwk" is not one of ` +
			`client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth, self_signed_tls_client_auth, none`},
		{"basic without clientId", func(c *Config) { c.ClientID = "" }, `clientId is missing: authMethod "client_secret_basic" needs clientId`},
		{"post without secret", func(c *Config) { c.AuthMethod = "client_secret_post"; c.ClientSecret = "" }, `clientSecret is missing: authMethod "client_secret_post" needs`},
		{"none with a secret", func(c *Config) { c.AuthMethod = "none" }, `authMethod "none"`},
		{"secret and secret file", func(c *Config) { c.ClientSecretFile = missing }, "clientSecret and clientSecretFile"},
		{"secret file missing", func(c *Config) { c.ClientSecret = ""; c.ClientSecretFile = missing }, `clientSecretFile "` + missing},
		{"caFile missing", func(c *Config) { c.CAFile = missing }, `caFile "` + missing},
		{"caFile not PEM", func(c *Config) { c.CAFile = notPEM }, `caFile "` + notPEM + `" holds no PEM`},
		{"timeout not a duration", func(c *Config) { c.Timeout = "5" }, `timeout "5"`},
		{"timeout zero", func(c *Config) { c.Timeout = "0s" }, `timeout "0s"`},
		{"clockSkew negative", func(c *Config) { c.ClockSkew = "-1s" }, `clockSkew "-1s"`},
		{"cacheTTL not a duration", func(c *Config) { c.CacheTTL = "forever" }, `cacheTTL "forever"`},
		{"cacheTTL near the int64 limit", func(c *Config) { c.CacheTTL = "2562047h" }, `cacheTTL "2562047h" is over 8760h`},
		{"timeout near the int64 limit", func(c *Config) { c.Timeout = "2562047h" }, `timeout "2562047h" is over 8760h`},
		{"clockSkew over a year", func(c *Config) { c.ClockSkew = "8761h" }, `clockSkew "8761h" is over 8760h`},
		{"staleIfError over a year", func(c *Config) { c.StaleIfError = "8761h" }, `staleIfError "8761h" is over 8760h`},
		{"negativeCacheTTL over a year", func(c *Config) { c.NegativeCacheTTL = "8761h" }, `negativeCacheTTL "8761h" is over 8760h`},
		{"headers twice in two letter cases", func(c *Config) { c.Headers = map[string]string{"X-Tenant": "a", "x-tenant": "b"} },
			"headers.X-Tenant is given twice"},
		{"tokenQuery with an escape", func(c *Config) { c.TokenQuery = "access%5Ftoken" }, `tokenQuery "access%5Ftoken" has characters`},
		{"tokenQuery with a space", func(c *Config) { c.TokenQuery = "access token" }, `tokenQuery "access token" has characters`},
		{"tokenCookie not a cookie name", func(c *Config) { c.TokenCookie = "a=b" }, `tokenCookie "a=b" is not a valid cookie name`},
		{"endpoint with a key in its query", func(c *Config) { c.Endpoint = "ftp://auth.example/?api_key=s3cret-value" },
			`endpoint "ftp://auth.example/?<redacted>"`},
		{"endpoint with a '#' in its password", func(c *Config) { c.Endpoint = "https://u:s3cret-value#x@auth.example/" },
			`endpoint "<userinfo>@auth.example/"`},
		{"headers Host twice, one empty", func(c *Config) { c.Headers = map[string]string{"Host": "", "host": "as.example"} },
			"headers.Host is given twice"},
		{"responseFormat jwt over plain http", func(c *Config) {
			c.Endpoint, c.ResponseFormat, c.ResponseKeysFile = "http://auth.example/introspect", "jwt", keysFile
		}, `endpoint "http://auth.example/introspect" is plain http: responseFormat "jwt" needs https`},
		{"negativeCacheTTL", func(c *Config) { c.NegativeCacheTTL = "5 s" }, `negativeCacheTTL "5 s"`},
		{"staleIfError", func(c *Config) { c.StaleIfError = "x" }, `staleIfError "x"`},
		{"cacheSize zero", func(c *Config) { c.CacheSize = 0 }, "cacheSize 0"},
		{"maxTokenLength zero", func(c *Config) { c.MaxTokenLength = 0 }, "maxTokenLength 0"},
		{"maxConcurrentIntrospections zero", func(c *Config) { c.MaxConcurrentIntrospections = 0 }, "maxConcurrentIntrospections 0"},
		{"tokenHeader invalid", func(c *Config) { c.TokenHeader = "X Token" }, `tokenHeader "X Token"`},
		{"no token source", func(c *Config) { c.TokenHeader = "" }, "tokenHeader, tokenQuery and tokenCookie are all missing"},
		{"realm with a quote", func(c *Config) { c.Realm = `a"b` }, `realm "a\"b"`},
		{"scope with a quote", func(c *Config) { c.RequiredScopes = []string{`re"ad`} }, `requiredScopes item "re\"ad"`},
		{"forwardHeaders bad name", func(c *Config) { c.ForwardHeaders = map[string]string{"X Bad": "sub"} }, `forwardHeaders key "X Bad"`},
		{"forwardHeaders empty claim", func(c *Config) { c.ForwardHeaders = map[string]string{"X-Sub": " "} }, "forwardHeaders.X-Sub: the claim name is missing"},
		{"forwardHeaders the tokenHeader", func(c *Config) { c.ForwardHeaders = map[string]string{"authorization": "sub"} }, "forwardHeaders.authorization"},
		{"forwardHeaders name with 6 separators", func(c *Config) { c.ForwardHeaders = map[string]string{"X-A-B-C-D-E-F": "sub"} }, "forwardHeaders.X-A-B-C-D-E-F has more than 5"},
		{"tokenHeader with 6 separators", func(c *Config) { c.TokenHeader = "X.A.B.C.D.E_F" }, `tokenHeader "X.A.B.C.D.E_F" has more than 5`},
		{"headers bad name", func(c *Config) { c.Headers = map[string]string{"X:Y": "1"} }, `headers key "X:Y"`},
		{"headers CRLF", func(c *Config) { c.Headers = map[string]string{"X-Y": "a\r\nb"} }, "headers.X-Y"},
		{"headers second authentication", func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }, "headers.authorization"},

		{"private_key_jwt with a secret", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.PrivateKeyFile = rsaFile }, `authMethod "private_key_jwt" sends no secret`},
		{"private_key_jwt without a key", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = "" }, "privateKeyFile is missing"},
		{"private_key_jwt without clientId", func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.ClientID, c.PrivateKeyFile = "private_key_jwt", "", "", rsaFile
		}, `clientId is missing: authMethod "private_key_jwt"`},
		{"privateKeyFile missing", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = missing }, `privateKeyFile "` + missing},
		{"privateKeyFile not PEM", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = notPEM }, `privateKeyFile "` + notPEM + `" holds no PEM`},
		{"privateKeyFile a certificate", func(c *Config) { c.AuthMethod = "private_key_jwt"; c.ClientSecret = ""; c.PrivateKeyFile = certFile }, `holds a "CERTIFICATE" block`},
		{"privateKeyFile with another authMethod", func(c *Config) { c.PrivateKeyFile = rsaFile }, `privateKeyFile "` + rsaFile + `" is only read with authMethod "private_key_jwt"`},
		// signingAlg, and the keys each one takes: TestAssertionAlgs.
		{"client_secret_jwt without a secret", func(c *Config) { c.AuthMethod = "client_secret_jwt"; c.ClientSecret = "" },
			`clientSecret is missing: authMethod "client_secret_jwt" signs with clientSecret`},
		{"client_secret_jwt with a short secret", func(c *Config) { c.AuthMethod = "client_secret_jwt" },
			`clientSecret is 12 bytes long: signingAlg "HS256" needs a key of 32 bytes or more (RFC 7518 §3.2)`},
		{"client_secret_jwt with HS512 and a 32-byte secret", func(c *Config) {
			c.AuthMethod, c.SigningAlg, c.ClientSecret = "client_secret_jwt", "HS512", secret32
		}, `clientSecret is 32 bytes long: signingAlg "HS512" needs a key of 64 bytes or more`},
		{"client_secret_jwt with RS256", func(c *Config) {
			c.AuthMethod, c.SigningAlg, c.ClientSecret = "client_secret_jwt", "RS256", secret64
		}, `signingAlg "RS256" is not one of HS256, HS384, HS512 (for authMethod "client_secret_jwt")`},
		{"client_secret_jwt with a privateKeyFile", func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.PrivateKeyFile = "client_secret_jwt", secret64, rsaFile
		}, `privateKeyFile "` + rsaFile + `" is only read with authMethod "private_key_jwt"`},
		{"self_signed_tls_client_auth without a certificate", func(c *Config) { c.AuthMethod = "self_signed_tls_client_auth"; c.ClientSecret = "" },
			`tlsCertFile and tlsKeyFile are missing: authMethod "self_signed_tls_client_auth" presents that certificate`},
		{"self_signed_tls_client_auth with a secret", func(c *Config) {
			c.AuthMethod, c.TLSCertFile, c.TLSKeyFile = "self_signed_tls_client_auth", certFile, keyFile
		}, `authMethod "self_signed_tls_client_auth" sends no secret`},
		{"tls_client_auth without a certificate", func(c *Config) { c.AuthMethod = "tls_client_auth"; c.ClientSecret = "" }, `tlsCertFile and tlsKeyFile are missing`},
		{"tlsCertFile without tlsKeyFile", func(c *Config) { c.TLSCertFile = certFile }, `tlsKeyFile is missing: tlsCertFile "` + certFile + `" is set without it`},
		{"tlsKeyFile without tlsCertFile", func(c *Config) { c.TLSKeyFile = keyFile }, `tlsCertFile is missing: tlsKeyFile "` + keyFile + `" is set without it`},
		{"tlsCertFile over http", func(c *Config) { c.Endpoint = "http://auth.example/"; c.TLSCertFile, c.TLSKeyFile = certFile, keyFile }, `tlsCertFile "` + certFile + `" needs an https endpoint`},
		{"tlsKeyFile not the certificate's key", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, ecFile }, `tlsCertFile "` + certFile + `" and tlsKeyFile "` + ecFile + `"`},
		{"responseFormat unknown", func(c *Config) { c.ResponseFormat = "jws" }, `responseFormat "jws" is not json or jwt`},
		{"responseFormat jwt without keys", func(c *Config) { c.ResponseFormat = "jwt" }, "responseKeysFile is missing"},
		{"responseFormat jwt without clientId", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.AuthMethod, c.ClientSecret, c.ClientID = "jwt", keysFile, "none", "", ""
		}, `clientId is missing: responseFormat "jwt"`},
		{"responseKeysFile with json", func(c *Config) { c.ResponseKeysFile = keysFile }, `responseKeysFile "` + keysFile + `" is only read with responseFormat "jwt"`},
		{"responseKeysFile missing", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = missing }, `responseKeysFile "` + missing},
		{"responseKeysFile a private key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = rsaFile }, `responseKeysFile "` + rsaFile + `": holds a "RSA PRIVATE KEY" block`},
		{"responseKeysFile only an HMAC key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = hmacFile }, `responseKeysFile "` + hmacFile + `" holds no RSA, EC or Ed25519 public key`},
		{"responseKeysFile a weak RSA key", func(c *Config) { c.ResponseFormat = "jwt"; c.ResponseKeysFile = weakFile }, `an RSA key of 1024 bits is too weak`},
		{"forwardIntrospectionJWT with json", func(c *Config) { c.ForwardIntrospectionJWT = "X-Jwt" }, `forwardIntrospectionJWT "X-Jwt" needs responseFormat "jwt"`},
		{"forwardIntrospectionJWT bad name", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.ForwardIntrospectionJWT = "jwt", keysFile, "X Jwt"
		}, `forwardIntrospectionJWT "X Jwt" is not a valid header name`},
		{"forwardIntrospectionJWT also a forwardHeader", func(c *Config) {
			c.ResponseFormat, c.ResponseKeysFile, c.ForwardIntrospectionJWT = "jwt", keysFile, "X_Jwt"
			c.ForwardHeaders = map[string]string{"X-Jwt": "sub"}
		}, `forwardIntrospectionJWT "X_Jwt" is also in forwardHeaders`},
		{"dpop unknown", func(c *Config) { c.DPoP = "on" }, `dpop "on" is not one of allowed, required, off`},
		{"certificateBound off", func(c *Config) { c.CertificateBound = "off" }, `certificateBound "off" is not one of allowed, required`},
		{"dpopProofMaxAge zero", func(c *Config) { c.DPoPProofMaxAge = "0s" }, `dpopProofMaxAge "0s" must be more than 0`},
		{"dpopProofMaxAge not a duration", func(c *Config) { c.DPoPProofMaxAge = "60" }, `dpopProofMaxAge "60" is not a duration`},
		{"claims malformed", func(c *Config) { c.Claims = "Equals(`a`, `b`) &&" }, `claims: unexpected end of expression at column 20`},
		{"resourceMetadata without resource", func(c *Config) { c.ResourceMetadata = map[string]interface{}{"resource_name": "API"} },
			`resourceMetadata has no resource`},
		{"resourceMetadata resource not a URL", func(c *Config) { c.ResourceMetadata = map[string]interface{}{"resource": "api.example/mcp"} },
			`resourceMetadata.resource "api.example/mcp" is not an http or https URL`},
		{"resourceMetadata resource not a string", func(c *Config) { c.ResourceMetadata = map[string]interface{}{"resource": []interface{}{"https://a"}} },
			`resourceMetadata.resource must be a string`},
		{"resourceMetadata resource with a query", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example/mcp?v=1"}
		},
			`resourceMetadata.resource "https://api.example/mcp?v=1" has a query or fragment`},
		{"resourceMetadata resource with a fragment", func(c *Config) { c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example/#x"} },
			`resourceMetadata.resource "https://api.example/#x" has a query or fragment`},
		{"resourceMetadata list of numbers", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example", "scopes_supported": []interface{}{"read", 7}}
		}, `resourceMetadata.scopes_supported must be a list of strings`},
		{"resourceMetadata boolean", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example", "dpop_bound_access_tokens_required": "yes"}
		}, `resourceMetadata.dpop_bound_access_tokens_required "yes" must be true or false`},
		{"dpop required with tokenQuery", func(c *Config) { c.DPoP = "required"; c.TokenQuery = "access_token" }, `dpop "required" takes tokens from the Authorization header's DPoP scheme only`},
		{"dpop required with another tokenHeader", func(c *Config) { c.DPoP = "required"; c.TokenHeader = "X-Token" }, `tokenHeader "X-Token"`},
		{"dpopNonce with dpop off", func(c *Config) { c.DPoP = "off"; c.DPoPNonce = true }, `dpopNonce is set, but dpop "off"`},
		{"dpopNonce without a secret", func(c *Config) { c.AuthMethod = "none"; c.ClientSecret = ""; c.DPoPNonce = true }, `dpopNonce needs a client secret or key`},
		{"sharedCache host:port", func(c *Config) { redis(c, "cache:6379") }, `sharedCache "cache:6379" is not a redis://host:port or rediss://host:port URL`},
		{"sharedCache http", func(c *Config) { redis(c, "http://cache:6379") }, `sharedCache "http://cache:6379" is not a redis://`},
		{"sharedCache without a host", func(c *Config) { redis(c, "redis:///0") }, `sharedCache "redis:///0" is not`},
		{"sharedCache with a query", func(c *Config) { redis(c, "redis://cache?db=1") }, `sharedCache "redis://cache?<redacted>" is not`},
		{"sharedCache with a password", func(c *Config) { redis(c, "redis://default:s3cret-value@cache:6379") },
			`sharedCache "<userinfo>@cache:6379" carries a password: put it in sharedCachePasswordFile`},
		{"sharedCache database not a number", func(c *Config) { redis(c, "redis://cache/one") }, `sharedCache "redis://cache/one": the database "one" is not a number`},
		{"sharedCache without a key file", func(c *Config) { c.SharedCache = "redis://cache" },
			`sharedCacheKeyFile is missing: sharedCache needs a secret of at least 32 bytes, the same on every replica`},
		{"sharedCacheKeyFile short", func(c *Config) { redis(c, "redis://cache"); c.SharedCacheKeyFile = shortKey },
			`sharedCacheKeyFile "` + shortKey + `" holds 31 bytes: it needs at least 32`},
		{"sharedCacheKeyFile missing", func(c *Config) { redis(c, "redis://cache"); c.SharedCacheKeyFile = missing }, `sharedCacheKeyFile "` + missing + `": `},
		{"sharedCacheKeyFile without sharedCache", func(c *Config) { c.SharedCacheKeyFile = sharedKey }, `sharedCacheKeyFile "` + sharedKey + `" is set without sharedCache`},
		{"sharedCachePasswordFile empty", func(c *Config) { redis(c, "redis://cache"); c.SharedCachePasswordFile = empty }, `sharedCachePasswordFile "` + empty + `" is empty`},
		{"sharedCacheTimeout zero", func(c *Config) { redis(c, "redis://cache"); c.SharedCacheTimeout = "0s" }, `sharedCacheTimeout "0s" must be more than 0`},
		{"sharedCacheTimeout not a duration", func(c *Config) { redis(c, "redis://cache"); c.SharedCacheTimeout = "50" }, `sharedCacheTimeout "50" is not a duration`},
		{"sharedCacheCAFile with redis://", func(c *Config) { redis(c, "redis://cache"); c.SharedCacheCAFile = certFile },
			`sharedCacheCAFile "` + certFile + `" is only read with a rediss:// sharedCache`},
		{"sharedCacheCAFile not PEM", func(c *Config) { redis(c, "rediss://cache"); c.SharedCacheCAFile = notPEM }, `sharedCacheCAFile "` + notPEM + `" holds no PEM`},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig("https://auth.example/introspect")
			tc.configure(config)
			_, err := New(context.Background(), &backend{}, config, "auth@test")
			if err == nil {
				t.Fatalf("New accepted the configuration, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-value") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

// TestConfigForms: values as Traefik decodes them from labels ("a, b" lists).
func TestConfigForms(t *testing.T) {
	_, config := activeServer(t)
	config.RequiredScopes = []string{" read ", "", "write"}
	config.Audiences = []string{" api"}
	m, _ := newMiddleware(t, config)
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	if fmt.Sprint(m.requiredScopes) != "[read write]" {
		t.Errorf("requiredScopes = %q", m.requiredScopes)
	}

	config.RequiredScopes = []string{"read admin"}
	m, _ = newMiddleware(t, config)
	rec := serve(m, bearer("tok"))
	if want := `Bearer realm="traefik", error="insufficient_scope", scope="read admin"`; rec.Header().Get("WWW-Authenticate") != want {
		t.Errorf("WWW-Authenticate = %q, want %q", rec.Header().Get("WWW-Authenticate"), want)
	}
}

func TestCreateConfigIsFresh(t *testing.T) {
	a, b := CreateConfig(), CreateConfig()
	a.RequiredScopes = append(a.RequiredScopes, "read")
	a.ForwardHeaders["X-Sub"] = "sub"
	a.Headers["X-Tenant"] = "a"
	if len(b.RequiredScopes) != 0 || len(b.ForwardHeaders) != 0 || len(b.Headers) != 0 {
		t.Errorf("CreateConfig shares maps or slices between calls")
	}
}

// TestHugeDurations: the largest durations New takes still admit a token within its exp
// and nbf and cache it, rather than overflowing the time arithmetic.
func TestHugeDurations(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", withClaim("nbf", time.Now().Add(-time.Hour).Unix()))
	config := testConfig(as.URL)
	config.ClockSkew, config.CacheTTL, config.StaleIfError, config.Timeout = "8760h", "8760h", "8760h", "8760h"
	m, next := newMiddleware(t, config)
	serve(m, bearer("tok"))
	if rec := serve(m, bearer("tok")); rec.Code != http.StatusOK || next.count() != 2 || as.callCount() != 1 {
		t.Errorf("status = %d, backend requests = %d, endpoint calls = %d; want 200, 2 and 1", rec.Code, next.count(), as.callCount())
	}
}
