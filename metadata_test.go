package introspection

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metadataConfig is a route that publishes RFC 9728 metadata for https://api.example/mcp,
// as a file provider gives it (a list) and a docker label (a comma-separated string).
func metadataConfig(endpoint string) *Config {
	config := testConfig(endpoint)
	config.ResourceMetadata = map[string]interface{}{
		"resource":              "https://api.example/mcp",
		"authorization_servers": []interface{}{"https://as.example"},
		"scopes_supported":      "read, write",
		"resource_name":         "Example MCP server",
	}
	return config
}

const metadataURL = "https://api.example/.well-known/oauth-protected-resource/mcp"

// documentAlgs is the document's member for the DPoP algorithms a route takes by default.
const documentAlgs = `"dpop_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","RS256","RS384","RS512","EdDSA"],`

// TestResourceMetadata: the document is answered by the middleware itself, without a
// token, on RFC 9728 §3.1's path for the resource and on the bare well-known path.
func TestResourceMetadata(t *testing.T) {
	const document = `{"authorization_servers":["https://as.example"],"bearer_methods_supported":["header"],` + documentAlgs +
		`"resource":"https://api.example/mcp","resource_name":"Example MCP server","scopes_supported":["read","write"]}`
	as, _ := activeServer(t)
	config := metadataConfig(as.URL)
	config.ForwardHeaders = map[string]string{"X-User": "sub"}
	m, next := newHandler(t, config)
	at := func(method, path string, edit func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			r.Method = method
			r.URL.Path = path
			if edit != nil {
				edit(r)
			}
		}
	}
	for _, tc := range []struct {
		desc    string
		request func(*http.Request)
		body    string
	}{
		{"GET, the resource's path", at("GET", "/.well-known/oauth-protected-resource/mcp", nil), document},
		{"GET, the bare well-known path", at("GET", "/.well-known/oauth-protected-resource", nil), document},
		{"HEAD", at("HEAD", "/.well-known/oauth-protected-resource/mcp", nil), ""},
		{"with a forged identity header", at("GET", "/.well-known/oauth-protected-resource/mcp", func(r *http.Request) { r.Header.Set("X-User", "root") }), document},
		{"with a token the route admits: still the document", at("GET", "/.well-known/oauth-protected-resource/mcp", bearer("tok")), document},
		{"with a malformed token: still the document", at("GET", "/.well-known/oauth-protected-resource/mcp", bearer("a b")), document},
	} {
		serve(m, bearer("tok")) // the token's verdict is cached: the fast path sees the document's requests too
		calls, reached := as.callCount(), next.count()
		rec := serve(m, tc.request)
		if rec.Code != 200 || rec.Body.String() != tc.body || rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("Content-Length") != strconv.Itoa(len(document)) || rec.Header()["Www-Authenticate"] != nil {
			t.Errorf("%s: got %d %q %q, body %s", tc.desc, rec.Code, rec.Header(), rec.Header()["Www-Authenticate"], rec.Body)
		}
		if as.callCount() != calls || next.count() != reached {
			t.Errorf("%s: the endpoint got %d calls, the backend %d requests; want neither", tc.desc, as.callCount()-calls, next.count()-reached)
		}
	}
	for _, tc := range []struct {
		desc    string
		request func(*http.Request)
	}{
		{"POST is not a read of the document", at("POST", "/.well-known/oauth-protected-resource/mcp", nil)},
		{"another resource's document", at("GET", "/.well-known/oauth-protected-resource/other", nil)},
		{"the resource itself", at("GET", "/mcp", nil)},
	} {
		rec := serve(m, tc.request)
		want := []string{`Bearer realm="traefik", resource_metadata="` + metadataURL + `"`, `DPoP ` + dpopAlgs + `, resource_metadata="` + metadataURL + `"`}
		if rec.Code != 401 || strings.Join(rec.Header()["Www-Authenticate"], "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got %d %q, want 401 %q", tc.desc, rec.Code, rec.Header()["Www-Authenticate"], want)
		}
	}
}

// TestResourceMetadataChallenges: every challenge points to the document, on each line.
func TestResourceMetadataChallenges(t *testing.T) {
	pointer := `, resource_metadata="` + metadataURL + `"`
	as, _ := activeServer(t)
	for _, tc := range []struct {
		desc      string
		configure func(*Config)
		request   func(*http.Request)
		status    int
		challenge []string
	}{
		{"no token", nil, nil, 401, []string{`Bearer realm="traefik"` + pointer, `DPoP ` + dpopAlgs + pointer}},
		{"inactive", nil, bearer("unknown"), 401, []string{`Bearer realm="traefik", error="invalid_token"` + pointer, `DPoP ` + dpopAlgs + pointer}},
		{"a missing scope", func(c *Config) { c.RequiredScopes = []string{"admin"} }, bearer("tok"), 403,
			[]string{`Bearer realm="traefik", error="insufficient_scope", scope="admin"` + pointer, `DPoP ` + dpopAlgs + pointer}},
		{"a claims rule not met, described", func(c *Config) { c.Claims = "Equals(`client_id`, `other`)"; c.ErrorDescription = true }, bearer("tok"), 403,
			[]string{`Bearer realm="traefik", error="insufficient_scope", error_description="claims rule not met"` + pointer, `DPoP ` + dpopAlgs + pointer}},
		{"dpop required", func(c *Config) { c.DPoP = "required" }, bearer("tok"), 401, []string{`DPoP error="invalid_token", ` + dpopAlgs + pointer}},
	} {
		config := metadataConfig(as.URL)
		if tc.configure != nil {
			tc.configure(config)
		}
		m, next := newHandler(t, config)
		rec := serve(m, tc.request)
		if rec.Code != tc.status || strings.Join(rec.Header()["Www-Authenticate"], "\n") != strings.Join(tc.challenge, "\n") || next.count() != 0 {
			t.Errorf("%s: got %d %q; want %d %q", tc.desc, rec.Code, rec.Header()["Www-Authenticate"], tc.status, tc.challenge)
		}
		forgetStates(as.URL)
	}
}

// TestResourceMetadataDefaults: the members the configuration decides, unless given, and
// the document's paths for a resource without a path.
func TestResourceMetadataDefaults(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		configure func(*Config)
		path      string
		want      string
	}{
		{"a resource without a path: the bare path, no trailing slash", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example/"}
		}, "/.well-known/oauth-protected-resource",
			`{"bearer_methods_supported":["header"],` + documentAlgs + `"resource":"https://api.example/"}`},
		{"tokenQuery: the query method too; dpop off: no algorithms", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example"}
			c.TokenQuery = "access_token"
			c.DPoP = "off"
		}, "/.well-known/oauth-protected-resource", `{"bearer_methods_supported":["header","query"],"resource":"https://api.example"}`},
		{"another tokenHeader and a cookie: no RFC 6750 method", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example"}
			c.TokenHeader = "X-Token"
			c.TokenCookie = "session"
		}, "/.well-known/oauth-protected-resource", `{"bearer_methods_supported":[],"resource":"https://api.example"}`},
		{"sender-constrained tokens required", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example/v1/mcp", "dpop_signing_alg_values_supported": "ES256"}
			c.DPoP = "required"
			c.CertificateBound = "required"
		}, "/.well-known/oauth-protected-resource/v1/mcp", `{"bearer_methods_supported":["header"],"dpop_bound_access_tokens_required":true,` +
			`"dpop_signing_alg_values_supported":["ES256"],"resource":"https://api.example/v1/mcp","tls_client_certificate_bound_access_tokens":true}`},
		{"a discovered server and required scopes: the authorization server and the scopes", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example"}
			c.Endpoint, c.Issuer = "", "https://as.example"
			c.RequiredScopes = []string{"mcp:tools read"}
			c.DPoP = "off"
		}, "/.well-known/oauth-protected-resource", `{"authorization_servers":["https://as.example"],"bearer_methods_supported":["header"],` +
			`"resource":"https://api.example","scopes_supported":["mcp:tools","read"]}`},
		{"given members win, labels' strings typed, others as given", func(c *Config) {
			c.ResourceMetadata = map[string]interface{}{"resource": "https://api.example", "bearer_methods_supported": "header,body",
				"tls_client_certificate_bound_access_tokens": "false", "dpop_bound_access_tokens_required": false, "x_custom": "7"}
			c.DPoP = "required"
			c.CertificateBound = "required"
		}, "/.well-known/oauth-protected-resource", `{"bearer_methods_supported":["header","body"],"dpop_bound_access_tokens_required":false,` + documentAlgs +
			`"resource":"https://api.example","tls_client_certificate_bound_access_tokens":false,"x_custom":"7"}`},
	} {
		config := testConfig("https://as.example/introspect")
		tc.configure(config)
		m, _ := newHandler(t, config)
		rec := serve(m, func(r *http.Request) { r.URL.Path = tc.path })
		if rec.Code != 200 || rec.Body.String() != tc.want {
			t.Errorf("%s: got %d %s, want %s", tc.desc, rec.Code, rec.Body, tc.want)
		}
	}
}
