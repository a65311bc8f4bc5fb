package introspection

import (
	"log"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRefusalReasons is each refusal's reason as errorDescription puts it in the challenge
// and logRejections in the log: a phrase naming the check, never a value of the token's.
func TestRefusalReasons(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	jkt := map[string]interface{}{"jkt": key.thumbprint()}
	described := func(code, reason string) string { return `error="` + code + `", error_description="` + reason + `"` }
	onBearer := func(attributes string) []string {
		return []string{`Bearer realm="traefik", ` + attributes, `DPoP ` + dpopAlgs}
	}
	onDPoP := func(attributes string) []string {
		return []string{`Bearer realm="traefik"`, `DPoP ` + attributes + `, ` + dpopAlgs}
	}
	header := func(values ...string) func(*http.Request) {
		return func(r *http.Request) { r.Header["Authorization"] = values }
	}
	refresh := withClaim("token_type", "refresh_token")
	cases := []struct {
		desc      string
		configure func(*Config)
		answer    map[string]interface{}
		request   func(*http.Request)
		status    int
		challenge []string
		logged    string // the line after "auth@test: refused "
	}{
		{"no token: no error, so no description (RFC 6750 §3.1)", nil, nil, nil,
			401, []string{`Bearer realm="traefik"`, `DPoP ` + dpopAlgs}, `401: no token`},
		{"malformed", nil, nil, bearer("abc$def"), 400, onBearer(described("invalid_request", "malformed token")), `400: malformed token`},
		{"two Authorization headers", nil, nil, header("Bearer tok", "Bearer tok"), 400,
			onBearer(described("invalid_request", "several tokens")), `400: several tokens`},
		{"over maxTokenLength", func(c *Config) { c.MaxTokenLength = 2 }, nil, bearer("tok"), 400,
			onBearer(described("invalid_request", "token over maxTokenLength")), `400: token over maxTokenLength`},
		{"inactive: no sub to log", nil, map[string]interface{}{"active": false, "sub": "alice"}, bearer("tok"), 401,
			onBearer(described("invalid_token", "token inactive")), `401: token inactive`},
		{"a refresh token", nil, refresh, bearer("tok"), 401, onBearer(described("invalid_token", "not an access token")),
			`401: not an access token, sub "alice", client_id "app"`},
		{"expired", nil, withClaim("exp", time.Now().Add(-time.Hour).Unix()), bearer("tok"), 401,
			onBearer(described("invalid_token", "token expired")), `401: token expired, sub "alice", client_id "app"`},
		{"not yet valid", nil, withClaim("nbf", time.Now().Add(time.Hour).Unix()), bearer("tok"), 401,
			onBearer(described("invalid_token", "token not yet valid")), `401: token not yet valid, sub "alice", client_id "app"`},
		{"issuer", func(c *Config) { c.Issuers = []string{"https://other.example"} }, activeClaims(), bearer("tok"), 401,
			onBearer(described("invalid_token", "issuer mismatch")), `401: issuer mismatch, sub "alice", client_id "app"`},
		{"audience", func(c *Config) { c.Audiences = []string{"billing"} }, activeClaims(), bearer("tok"), 401,
			onBearer(described("invalid_token", "audience mismatch")), `401: audience mismatch, sub "alice", client_id "app"`},
		{"a missing scope: the first one missing", func(c *Config) { c.RequiredScopes = []string{"read", "admin", "audit"} }, activeClaims(), bearer("tok"), 403,
			onBearer(described("insufficient_scope", "missing scope: admin") + `, scope="read admin audit"`), `403: missing scope: admin, sub "alice", client_id "app"`},
		{"a claims rule: no scope attribute without requiredScopes", func(c *Config) { c.Claims = "Equals(`sub`, `bob`)" }, activeClaims(), bearer("tok"), 403,
			onBearer(described("insufficient_scope", "claims rule not met")), `403: claims rule not met, sub "alice", client_id "app"`},
		{"a claims rule beside scopes that hold", func(c *Config) { c.Claims = "Equals(`sub`, `bob`)"; c.RequiredScopes = []string{"read"} }, activeClaims(), bearer("tok"), 403,
			onBearer(described("insufficient_scope", "claims rule not met") + `, scope="read"`), `403: claims rule not met, sub "alice", client_id "app"`},
		{"a sub that would forge a line is quoted", func(c *Config) { c.Audiences = []string{"billing"} }, withClaim("sub", `eve", client_id "root`), bearer("tok"), 401,
			onBearer(described("invalid_token", "audience mismatch")), `401: audience mismatch, sub "eve\", client_id \"root", client_id "app"`},
		{"a long sub is cut", func(c *Config) { c.Audiences = []string{"billing"} }, withClaim("sub", strings.Repeat("x", 300)), bearer("tok"), 401,
			onBearer(described("invalid_token", "audience mismatch")), `401: audience mismatch, sub "` + strings.Repeat("x", 256) + `...", client_id "app"`},
		{"a binding we cannot check", nil, boundTo(map[string]interface{}{"jwk": map[string]interface{}{"kty": "EC"}}), bearer("tok"), 401,
			onBearer(described("invalid_token", "binding cannot be checked")), `401: binding cannot be checked, sub "alice", client_id "app"`},
		{"dpop required: a bearer token", func(c *Config) { c.DPoP = "required" }, activeClaims(), bearer("tok"), 401,
			[]string{`DPoP ` + described("invalid_token", "DPoP required") + `, ` + dpopAlgs}, `401: DPoP required`},
		{"dpop required: an unbound token", func(c *Config) { c.DPoP = "required" }, activeClaims(), withDPoP("tok", key.proof("tok", nil)), 401,
			[]string{`DPoP ` + described("invalid_token", "token not DPoP-bound") + `, ` + dpopAlgs}, `401: token not DPoP-bound, sub "alice", client_id "app"`},
		{"certificateBound required: an unbound token", func(c *Config) { c.CertificateBound = "required" }, activeClaims(), bearer("tok"), 401,
			onBearer(described("invalid_token", "token not certificate-bound")), `401: token not certificate-bound, sub "alice", client_id "app"`},
		{"a DPoP-bound token as a bearer token", nil, boundTo(jkt), bearer("tok"), 401,
			onBearer(described("invalid_token", "DPoP-bound token without proof")), `401: DPoP-bound token without proof, sub "alice", client_id "app"`},
		{"an unbound token with a proof", nil, activeClaims(), withDPoP("tok", key.proof("tok", nil)), 401,
			onDPoP(described("invalid_token", "token not DPoP-bound")), `401: token not DPoP-bound, sub "alice", client_id "app"`},
		{"another key's proof", nil, boundTo(jkt), withDPoP("tok", newDPoPKey(t, "ES256").proof("tok", nil)), 401,
			onDPoP(described("invalid_token", "proof key mismatch")), `401: proof key mismatch, sub "alice", client_id "app"`},
		{"a certificate-bound token without its certificate", nil, boundTo(map[string]interface{}{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}), bearer("tok"), 401,
			onBearer(described("invalid_token", "certificate mismatch")), `401: certificate mismatch, sub "alice", client_id "app"`},
		{"a proof for another method", nil, boundTo(jkt), withDPoP("tok", key.proof("tok", func(_, c map[string]interface{}) { c["htm"] = "POST" })), 401,
			onDPoP(described("invalid_dpop_proof", "proof htm mismatch")), `401: proof htm mismatch`},
		{"a proof for another URL", nil, boundTo(jkt), withDPoP("tok", key.proof("tok", func(_, c map[string]interface{}) { c["htu"] = "http://api.example/other" })), 401,
			onDPoP(described("invalid_dpop_proof", "proof htu mismatch")), `401: proof htu mismatch`},
		{"a stale proof", nil, boundTo(jkt), withDPoP("tok", key.proof("tok", func(_, c map[string]interface{}) { c["iat"] = time.Now().Add(-time.Hour).Unix() })), 401,
			onDPoP(described("invalid_dpop_proof", "proof too old")), `401: proof too old`},
		{"no proof", nil, boundTo(jkt), withDPoP("tok", ""), 401, onDPoP(described("invalid_dpop_proof", "not one DPoP header")), `401: not one DPoP header`},
		{"a nonce asked for: RFC 9449 §9's own description", func(c *Config) { c.DPoPNonce = true }, boundTo(jkt), withDPoP("tok", key.proof("tok", nil)), 401,
			onDPoP(`error="use_dpop_nonce", ` + nonceDescription), `401: proof without our nonce`},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.desc, func(t *testing.T) {
			as := newAuthServer(t)
			if tc.answer != nil {
				as.answer("tok", tc.answer)
			}
			for _, describe := range []bool{true, false} {
				config := testConfig(as.URL)
				if tc.configure != nil {
					tc.configure(config)
				}
				config.ErrorDescription = describe
				config.LogRejections = describe
				var logs lockedBuffer
				log.SetOutput(&logs)
				forgetRejectionLogs() // a fresh second's lines for each case
				m, next := newMiddleware(t, config)
				rec := serve(m, tc.request)
				log.SetOutput(os.Stderr)
				want := tc.challenge
				if !describe {
					want = withoutDescription(tc.challenge)
				}
				if rec.Code != tc.status || strings.Join(rec.Header()["Www-Authenticate"], "\n") != strings.Join(want, "\n") || next.count() != 0 {
					t.Errorf("errorDescription %v: got %d %q, backend reached %d times; want %d %q", describe, rec.Code, rec.Header()["Www-Authenticate"], next.count(), tc.status, want)
				}
				lines := logs.since(0, "auth@test")
				switch {
				case !describe && len(lines) != 0:
					t.Errorf("logRejections off: logged %q", lines)
				case describe && (len(lines) != 1 || !strings.HasSuffix(lines[0], "auth@test: refused "+tc.logged)):
					t.Errorf("logged %q, want one line ending %q", lines, "auth@test: refused "+tc.logged)
				}
				forgetStates(as.URL)
			}
		})
	}
}

// withoutDescription is a challenge as it is without errorDescription: the RFC's own
// description of use_dpop_nonce stays.
func withoutDescription(challenges []string) []string {
	var plain []string
	for _, c := range challenges {
		if i := strings.Index(c, `, error_description="`); i >= 0 && !strings.Contains(c, nonceDescription) {
			end := strings.Index(c[i+len(`, error_description="`):], `"`)
			c = c[:i] + c[i+len(`, error_description="`)+end+1:]
		}
		plain = append(plain, c)
	}
	return plain
}

// forgetRejectionLogs starts every middleware's count of lines afresh.
func forgetRejectionLogs() {
	rejectionLogsMu.Lock()
	defer rejectionLogsMu.Unlock()
	rejectionLogs = map[string]*rejectionLog{}
}
