package introspection

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"reflect"
	"testing"
)

// TestCertificateBound sends a token bound to a client certificate (RFC 8705 §3) over TLS
// with that certificate, another, none, and over plain HTTP; each request is checked, the
// cached answer's too.
func TestCertificateBound(t *testing.T) {
	bound := testCert(t, "bound client", nil, x509.ExtKeyUsageClientAuth)
	stranger := testCert(t, "stranger", nil, x509.ExtKeyUsageClientAuth)
	sum := sha256.Sum256(bound.Leaf.Raw)
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}))
	m, next := newMiddleware(t, testConfig(as.URL))
	over := func(cert *tls.Certificate) func(*http.Request) {
		return func(r *http.Request) {
			bearer("tok")(r)
			r.TLS = &tls.ConnectionState{}
			if cert != nil {
				r.TLS.PeerCertificates = []*x509.Certificate{cert.Leaf}
			}
		}
	}
	cases := []struct {
		name    string
		request func(*http.Request)
		status  int
	}{
		{"the bound certificate", over(&bound), 200},
		{"the bound certificate, the answer cached", over(&bound), 200},
		{"another certificate", over(&stranger), 401},
		{"TLS without a certificate", over(nil), 401},
		{"plain HTTP", bearer("tok"), 401},
		{"the bound certificate again", over(&bound), 200},
	}
	for _, tc := range cases {
		before := next.count()
		rec := serve(m, tc.request)
		want := []string(nil)
		if tc.status != 200 {
			want = bearerError("invalid_token")
		}
		if rec.Code != tc.status || !reflect.DeepEqual(rec.Header().Values("WWW-Authenticate"), want) || next.count()-before != map[bool]int{true: 1}[tc.status == 200] {
			t.Errorf("%s: status %d, challenges %q; want %d, %q", tc.name, rec.Code, rec.Header().Values("WWW-Authenticate"), tc.status, want)
		}
	}
	if as.callCount() != 1 {
		t.Errorf("the endpoint had %d calls, want 1: the answer is cached, the certificate checked on each request", as.callCount())
	}
}

// TestBindingModes runs the modes of dpop and certificateBound, and the cnf shapes, each
// on its own endpoint: the answer, the challenges, and the calls.
func TestBindingModes(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	jkt := map[string]interface{}{"jkt": key.thumbprint()}
	dpop := func(r *http.Request) { withDPoP("tok", key.proof("tok", nil))(r) }
	dpopOnly := []string{`DPoP ` + dpopAlgs}
	nullCnf := activeClaims()
	nullCnf["cnf"] = nil // JSON null: no binding
	cases := []struct {
		name      string
		configure func(*Config)
		answer    map[string]interface{}
		request   func(*http.Request)
		status    int
		challenge []string
		calls     int
	}{
		{"the defaults: a bearer token", nil, activeClaims(), bearer("tok"), 200, nil, 1},
		{"the defaults: no token", nil, activeClaims(), nil, 401, []string{`Bearer realm="traefik"`, `DPoP ` + dpopAlgs}, 0},
		{"dpop required: a DPoP-bound token", func(c *Config) { c.DPoP = "required" }, boundTo(jkt), dpop, 200, nil, 1},
		{"dpop required: a bearer token, never introspected", func(c *Config) { c.DPoP = "required" }, activeClaims(), bearer("tok"), 401,
			[]string{`DPoP error="invalid_token", ` + dpopAlgs}, 0},
		{"dpop required: no token", func(c *Config) { c.DPoP = "required" }, activeClaims(), nil, 401, dpopOnly, 0},
		{"dpop required: an unbound token with a proof", func(c *Config) { c.DPoP = "required" }, activeClaims(), dpop, 401,
			[]string{`DPoP error="invalid_token", ` + dpopAlgs}, 1},
		{"dpop required: a missing scope", func(c *Config) { c.DPoP = "required"; c.RequiredScopes = []string{"admin"} }, boundTo(jkt), dpop, 403,
			[]string{`DPoP error="insufficient_scope", scope="admin", ` + dpopAlgs}, 1},
		{"the defaults: an inactive token with the DPoP scheme", nil, map[string]interface{}{"active": false}, dpop, 401, dpopError("invalid_token"), 1},
		{"the defaults: a missing scope with the DPoP scheme", func(c *Config) { c.RequiredScopes = []string{"admin"} }, boundTo(jkt), dpop, 403,
			[]string{`Bearer realm="traefik"`, `DPoP error="insufficient_scope", scope="admin", ` + dpopAlgs}, 1},
		{"the defaults: a missing scope with a bearer token", func(c *Config) { c.RequiredScopes = []string{"admin"} }, activeClaims(), bearer("tok"), 403,
			[]string{`Bearer realm="traefik", error="insufficient_scope", scope="admin"`, `DPoP ` + dpopAlgs}, 1},
		{"the defaults: a malformed token with the DPoP scheme", nil, activeClaims(), func(r *http.Request) { r.Header.Set("Authorization", "DPoP a b") }, 400,
			dpopError("invalid_request"), 0},
		{"the defaults: a malformed bearer token", nil, activeClaims(), func(r *http.Request) { r.Header.Set("Authorization", "Bearer a b") }, 400,
			bearerError("invalid_request"), 0},
		{"dpop off: a bearer token", func(c *Config) { c.DPoP = "off" }, activeClaims(), bearer("tok"), 200, nil, 1},
		{"dpop off: the DPoP scheme is no token of ours", func(c *Config) { c.DPoP = "off" }, boundTo(jkt), dpop, 401, []string{`Bearer realm="traefik"`}, 0},
		{"dpop off: a DPoP-bound token as a bearer token", func(c *Config) { c.DPoP = "off" }, boundTo(jkt), bearer("tok"), 401,
			[]string{`Bearer realm="traefik", error="invalid_token"`}, 1},
		{"another tokenHeader: no DPoP challenge", func(c *Config) { c.TokenHeader = "X-Token" }, activeClaims(), nil, 401, []string{`Bearer realm="traefik"`}, 0},
		{"certificateBound required: an unbound token", func(c *Config) { c.CertificateBound = "required" }, activeClaims(), bearer("tok"), 401,
			bearerError("invalid_token"), 1},
		{"a cnf binding by a member we cannot check", nil, boundTo(map[string]interface{}{"jwk": map[string]interface{}{"kty": "EC"}}), bearer("tok"), 401,
			bearerError("invalid_token"), 1},
		{"an empty cnf binds nothing", nil, boundTo(map[string]interface{}{}), bearer("tok"), 200, nil, 1},
		{"a null cnf binds nothing", nil, nullCnf, bearer("tok"), 200, nil, 1},
		{"a cnf that is not an object: a broken answer", nil, withClaim("cnf", "x"), bearer("tok"), 503, nil, 1},
		{"a cnf.jkt that is not a string: a broken answer", nil, boundTo(map[string]interface{}{"jkt": 7}), bearer("tok"), 503, nil, 1},
		{"a cnf x5t#S256 that is not a string: a broken answer", nil, boundTo(map[string]interface{}{"x5t#S256": true}), bearer("tok"), 503, nil, 1},
		{"a DPoP proof beside a bearer token bound to nothing: ignored", nil, activeClaims(), func(r *http.Request) {
			bearer("tok")(r)
			r.Header.Set("DPoP", key.proof("tok", nil))
		}, 200, nil, 1},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			as := newAuthServer(t)
			as.answer("tok", tc.answer)
			config := testConfig(as.URL)
			if tc.configure != nil {
				tc.configure(config)
			}
			m, next := newMiddleware(t, config)
			rec := serve(m, tc.request)
			if rec.Code != tc.status || !reflect.DeepEqual(rec.Header().Values("WWW-Authenticate"), tc.challenge) {
				t.Errorf("status %d, challenges %q; want %d, %q", rec.Code, rec.Header().Values("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if as.callCount() != tc.calls || (next.count() == 1) != (tc.status == 200) {
				t.Errorf("the endpoint had %d calls, the backend %d requests; want %d calls", as.callCount(), next.count(), tc.calls)
			}
		})
	}
}

// TestBoundForwarding: forwardAuthorization false keeps the proof from the backend with
// the token, and identity headers come from a bound token's answer as from any other.
func TestBoundForwarding(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	as := newAuthServer(t)
	as.answer("tok", boundTo(map[string]interface{}{"jkt": key.thumbprint()}))
	config := testConfig(as.URL)
	config.ForwardAuthorization = false
	config.ForwardHeaders = map[string]string{"X-Auth-Subject": "sub"}
	m, next := newMiddleware(t, config)
	for i := 1; i <= 2; i++ { // the second from the cached answer
		rec := serve(m, withDPoP("tok", key.proof("tok", nil)))
		got := next.lastRequest()
		if rec.Code != 200 || got == nil {
			t.Fatalf("request %d: status %d, want 200", i, rec.Code)
		}
		if len(got.Header["Authorization"]) != 0 || len(got.Header["Dpop"]) != 0 || got.Header.Get("X-Auth-Subject") != "alice" {
			t.Errorf("request %d: the backend got Authorization %q, DPoP %q, X-Auth-Subject %q; want none, none, alice", i,
				got.Header["Authorization"], got.Header["Dpop"], got.Header.Get("X-Auth-Subject"))
		}
	}
}
