package introspection

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClientAssertion: each call carries a fresh client assertion (RFC 7523 §2.2, §3) and
// no secret, signed with the key privateKeyFile holds in any of its forms (private_key_jwt)
// or with HMAC keyed by the client secret (client_secret_jwt), and checked here with the
// standard library alone. TestAssertionAlgs covers private_key_jwt's algorithms: the header's
// alg and typ, the signature's size, the keys each one takes.
func TestClientAssertion(t *testing.T) {
	const secret = "a-client-secret-of-64-bytes-for-HS512-0123456789abcdef0123456789"
	cases := []struct {
		desc     string
		key      interface{} // private_key_jwt's; nil for client_secret_jwt
		pkcs8    bool        // the key file is PKCS #8, not PKCS #1 or SEC 1
		alg      string      // signingAlg; "" keeps the default
		wantAlg  string
		kid      string
		audience string // assertionAudience
		wantAud  string // "" is the endpoint URL
	}{
		{desc: "PKCS #1 key, kid", key: testRSAKey, kid: "gw-2026", wantAlg: "RS256"},
		{desc: "PKCS #8 key, PS256, no kid", key: testRSAKey, pkcs8: true, alg: "PS256", wantAlg: "PS256"},
		{desc: "SEC 1 key, ES256, the issuer as audience", key: testECKey, alg: "ES256", wantAlg: "ES256", kid: "ec-1",
			audience: "https://issuer.example", wantAud: "https://issuer.example"},
		{desc: "client secret, HS256 by default", wantAlg: "HS256"},
		{desc: "client secret, HS384, kid", alg: "HS384", wantAlg: "HS384", kid: "s-1"},
		{desc: "client secret, HS512, the issuer as audience", alg: "HS512", wantAlg: "HS512",
			audience: "https://issuer.example", wantAud: "https://issuer.example"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("tok", activeClaims())
			as.answer("tok2", activeClaims())
			config := testConfig(as.URL + "/introspect")
			var key interface{} = []byte(secret)
			if tc.key != nil {
				config.ClientSecret = ""
				config.AuthMethod = "private_key_jwt"
				config.PrivateKeyFile = privateKeyFile(t, tc.key, tc.pkcs8)
				key = tc.key
			} else {
				config.ClientSecret = secret
				config.AuthMethod = "client_secret_jwt"
			}
			config.KeyID = tc.kid
			config.AssertionAudience = tc.audience
			config.SigningAlg = tc.alg
			wantAud := tc.wantAud
			if wantAud == "" {
				wantAud = as.URL + "/introspect"
			}
			m, _ := newMiddleware(t, config)

			jtis := map[string]bool{}
			for _, token := range []string{"tok", "tok2"} {
				before := time.Now().Unix()
				if rec := serve(m, bearer(token)); rec.Code != http.StatusOK {
					t.Fatalf("status = %d, want 200", rec.Code)
				}
				req, form := as.lastCall()
				if req.Header.Get("Authorization") != "" || form.Has("client_secret") || form.Has("client_id") {
					t.Errorf("a second authentication beside the assertion: Authorization %q, form %v", req.Header.Get("Authorization"), form)
				}
				if got := form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
					t.Errorf("client_assertion_type = %q", got)
				}
				header, claims, input, sig := decodeJWS(t, form.Get("client_assertion"))
				// Signed with the secret, never carrying it: not in the form, nor inside the assertion.
				decoded, _ := json.Marshal([]interface{}{header, claims})
				if strings.Contains(form.Encode()+string(decoded), url.QueryEscape(secret)) || strings.Contains(string(decoded), secret) {
					t.Errorf("the call carries the secret")
				}

				if header["alg"] != tc.wantAlg || header["typ"] != "JWT" {
					t.Errorf("header = %v, want alg %s, typ JWT", header, tc.wantAlg)
				}
				if kid, _ := header["kid"].(string); kid != tc.kid {
					t.Errorf("kid = %q, want %q", kid, tc.kid)
				}
				if claims["iss"] != "traefik" || claims["sub"] != "traefik" || claims["aud"] != wantAud {
					t.Errorf("iss, sub, aud = %v, %v, %v; want traefik, traefik, %s", claims["iss"], claims["sub"], claims["aud"], wantAud)
				}
				iat, _ := claims["iat"].(float64)
				exp, _ := claims["exp"].(float64)
				if int64(iat) < before || int64(iat) > time.Now().Unix() || exp <= iat || exp-iat > 60 {
					t.Errorf("iat, exp = %v, %v; want now and at most 60 s later", claims["iat"], claims["exp"])
				}
				jti, _ := claims["jti"].(string)
				if len(jti) < 16 || jtis[jti] {
					t.Errorf("jti %q is short or repeated", jti)
				}
				jtis[jti] = true

				if !verifiesAs(tc.wantAlg[:2], hashOf(tc.wantAlg), key, input, sig) {
					t.Errorf("the assertion does not verify by %s with the key", tc.wantAlg)
				}
			}
		})
	}
}

// hashOf is the hash an algorithm's name ends with.
func hashOf(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

// TestMutualTLS: tls_client_auth and self_signed_tls_client_auth (RFC 8705 §2) against an
// endpoint that asks for a client certificate and, for the client_id in the body, either
// verifies it against its CA and matches its subject (§2.1.1's PKI method) or compares it
// with the one certificate registered for the client (§2.2's self-signed method). Without
// the right certificate the call fails: 503.
func TestMutualTLS(t *testing.T) {
	clientCA := testCert(t, "client CA", nil, x509.ExtKeyUsageClientAuth)
	strangerCA := testCert(t, "stranger CA", nil, x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeCertFiles(t, testCert(t, "traefik", &clientCA, x509.ExtKeyUsageClientAuth))
	strangerCert, strangerKey := writeCertFiles(t, testCert(t, "traefik", &strangerCA, x509.ExtKeyUsageClientAuth))
	otherCert, otherKey := writeCertFiles(t, testCert(t, "someone-else", &clientCA, x509.ExtKeyUsageClientAuth))
	selfSigned := testCert(t, "traefik", nil, x509.ExtKeyUsageClientAuth)
	selfCert, selfKey := writeCertFiles(t, selfSigned)
	impostorCert, impostorKey := writeCertFiles(t, testCert(t, "traefik", nil, x509.ExtKeyUsageClientAuth))
	const selfSignedClient = "self-signed"
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.Leaf)

	as := &authServer{answers: map[string]interface{}{}}
	as.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body)) // as.serve reads it again
		form, _ := url.ParseQuery(string(body))
		clientID, _, _ := req.BasicAuth()
		if id := form.Get("client_id"); id != "" {
			clientID = id
		}
		authenticated := false
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			leaf := req.TLS.PeerCertificates[0]
			if clientID == selfSignedClient {
				authenticated = bytes.Equal(leaf.Raw, selfSigned.Leaf.Raw)
			} else {
				_, err := leaf.Verify(x509.VerifyOptions{Roots: clientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
				authenticated = err == nil && leaf.Subject.CommonName == clientID
			}
		}
		if !authenticated {
			http.Error(rw, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		as.serve(rw, req)
	}))
	// Any certificate: the handler checks it by the client's method. The CertificateRequest
	// names the client CA, as a server that issues certificates does: a client that sent
	// only certificates of the CAs named would not send its self-signed one.
	as.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, ClientCAs: clientCAs}
	as.StartTLS()
	as.stopAtCleanup(t)
	caFile := writePEM(t, "server-ca.pem", "CERTIFICATE", as.Certificate().Raw)

	cases := []struct {
		desc      string
		configure func(*Config)
		status    int
		auth      string // the Authorization header the endpoint sees
		clientID  string // the client_id it sees, when not traefik
	}{
		{desc: "tls_client_auth: the certificate and client_id, no secret", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.TLSCertFile, c.TLSKeyFile = "tls_client_auth", "", certFile, keyFile
		}, status: 200},
		{desc: "a certificate beside client_secret_basic", configure: func(c *Config) {
			c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		}, status: 200, auth: basicCredentials("traefik", "s3cret-value")},
		{desc: "no certificate", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret = "none", ""
		}, status: 503},
		{desc: "a certificate from another CA", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.TLSCertFile, c.TLSKeyFile = "tls_client_auth", "", strangerCert, strangerKey
		}, status: 503},
		{desc: "another client's certificate", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.TLSCertFile, c.TLSKeyFile = "tls_client_auth", "", otherCert, otherKey
		}, status: 503},
		{desc: "self_signed_tls_client_auth: the registered certificate and client_id, no secret", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.ClientID, c.TLSCertFile, c.TLSKeyFile = "self_signed_tls_client_auth", "", selfSignedClient, selfCert, selfKey
		}, status: 200, clientID: selfSignedClient},
		{desc: "self_signed_tls_client_auth: another self-signed certificate", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.ClientID, c.TLSCertFile, c.TLSKeyFile = "self_signed_tls_client_auth", "", selfSignedClient, impostorCert, impostorKey
		}, status: 503},
		{desc: "self_signed_tls_client_auth: a CA's certificate is not the registered one", configure: func(c *Config) {
			c.AuthMethod, c.ClientSecret, c.ClientID, c.TLSCertFile, c.TLSKeyFile = "self_signed_tls_client_auth", "", selfSignedClient, certFile, keyFile
		}, status: 503},
	}
	for i, tc := range cases {
		tc := tc
		// A token per row: the rows share the endpoint and the client id, so they would
		// share cached answers too.
		token := "tok" + strconv.Itoa(i)
		as.answer(token, activeClaims())
		t.Run(tc.desc, func(t *testing.T) {
			calls := as.callCount()
			config := testConfig(as.URL)
			config.CAFile = caFile
			tc.configure(config)
			m, next := newMiddleware(t, config)
			rec := serve(m, bearer(token))
			if rec.Code != tc.status || rec.Header().Get("WWW-Authenticate") != "" {
				t.Fatalf("status = %d, challenge %q; want %d and none", rec.Code, rec.Header().Get("WWW-Authenticate"), tc.status)
			}
			if tc.status != http.StatusOK {
				if next.count() != 0 || as.callCount() != calls {
					t.Errorf("backend requests = %d, answered calls = %d; want none", next.count(), as.callCount()-calls)
				}
				return
			}
			req, form := as.lastCall()
			if as.callCount() != calls+1 {
				t.Errorf("answered calls = %d, want 1", as.callCount()-calls)
			}
			wantID := tc.clientID
			if wantID == "" {
				wantID = "traefik"
			}
			if form.Get("client_id") != wantID && tc.auth == "" {
				t.Errorf("client_id = %q, want %s (RFC 8705 §2)", form.Get("client_id"), wantID)
			}
			if req.Header.Get("Authorization") != tc.auth || form.Has("client_secret") {
				t.Errorf("Authorization = %q, client_secret %q; want %q and none", req.Header.Get("Authorization"), form.Get("client_secret"), tc.auth)
			}
		})
	}
}

func TestClientSecretFile(t *testing.T) {
	as := newAuthServer(t)
	as.answer("tok", activeClaims())
	path := writeFile(t, "secret", "from-a-file\n")
	config := testConfig(as.URL)
	config.ClientSecret = ""
	config.ClientSecretFile = path
	config.AuthMethod = "client_secret_post"
	m, _ := newMiddleware(t, config)
	serve(m, bearer("tok"))
	if _, form := as.lastCall(); form.Get("client_secret") != "from-a-file" {
		t.Errorf("client_secret = %q, want from-a-file", form.Get("client_secret"))
	}
}

func TestTLS(t *testing.T) {
	as := &authServer{answers: map[string]interface{}{"tok": activeClaims()}}
	as.Server = httptest.NewTLSServer(http.HandlerFunc(as.serve))
	as.stopAtCleanup(t)
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", as.Certificate().Raw)

	cases := []struct {
		desc      string
		configure func(*Config)
		status    int
	}{
		{"verified by default: an unknown CA fails", func(*Config) {}, 503},
		{"caFile trusts the server", func(c *Config) { c.CAFile = caFile }, 200},
		{"sslVerify false", func(c *Config) { c.SSLVerify = false }, 200},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			config := testConfig(as.URL)
			tc.configure(config)
			m, _ := newMiddleware(t, config)
			if rec := serve(m, bearer("tok")); rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
		})
	}
}

// TestProxyFromEnvironment: the endpoint is called through HTTP_PROXY/HTTPS_PROXY when
// Traefik's environment sets them, as SECURITY.md says (Go's default, and ForwardAuth's).
func TestProxyFromEnvironment(t *testing.T) {
	m, _ := newMiddleware(t, testConfig("https://auth.example/introspect"))
	if transport, ok := m.state.client.Transport.(*http.Transport); !ok || transport.Proxy == nil {
		t.Errorf("the endpoint's transport ignores the proxy environment")
	}
}
