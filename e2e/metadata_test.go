package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// RFC 9728 protected resource metadata (resourceMetadata) through a real Traefik v3.6
// against node oidc-provider: the document the middleware serves itself, the
// resource_metadata attribute of every challenge, and an MCP-style client that starts from
// the resource's URL alone, follows the challenge to the document and from there to the
// authorization server, gets a token and gets in.

// The well-known path of RFC 9728 §3.
const prmPath = "/.well-known/oauth-protected-resource"

// The MCP client: registered at oidc-provider, its tokens carry acme's claims.
const (
	mcpClient = "mcp-client"
	mcpSecret = "mcp-client-secret"
)

// mcpRule is the router rule the README's example gives: the MCP endpoint and the
// well-known path both go through the middleware.
func mcpRule(host string) string {
	return fmt.Sprintf("Host(`%s`) && (PathPrefix(`/mcp`) || PathPrefix(`%s`))", host, prmPath)
}

func TestProtectedResourceMetadata(t *testing.T) {
	// The resource's URL names Traefik's address, which oidc-provider must know as a resource
	// server before Traefik starts.
	web, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(web)
	resource := "http://mcp.localhost:" + port + "/mcp"              // with a path
	queryResource := "http://mcpq.localhost:" + port                 // without one
	metadataURL := "http://mcp.localhost:" + port + prmPath + "/mcp" // RFC 9728 §3.1
	queryMetadataURL := queryResource + prmPath
	op := startClaimsProvider(t, harness.OPConfig{
		Clients:     []map[string]any{{"client_id": mcpClient, "client_secret": mcpSecret, "scope": harness.OPScopes}},
		Resources:   map[string]string{resource: harness.OPScopes, queryResource: harness.OPScopes},
		ExtraClaims: map[string]map[string]any{mcpClient: acmeClaims}, // the route's rule asks for tenant acme
	})

	backend := &countingBackend{}
	mcp := claimsOptions(op, fmt.Sprintf("requiredScopes: [read]\naudiences: [%q]\nclaims: %s\nforwardAuthorization: false\n"+
		"resourceMetadata:\n  resource: %q\n  authorization_servers: [%q]\n  scopes_supported: [read, write]\n"+
		"  resource_documentation: https://docs.tokengate.test/mcp\n  resource_name: Tokengate MCP",
		resource, yamlSingle("Equals(`tenant`, `acme`)"), resource, op.Issuer))
	// A comma-separated string for a list, as a docker label gives it, and tokenQuery:
	// bearer_methods_supported says header and query.
	mcpq := claimsOptions(op, fmt.Sprintf("tokenQuery: access_token\ndpop: \"off\"\n"+
		"resourceMetadata:\n  resource: %q\n  authorization_servers: %q",
		queryResource, op.Issuer+",https://backup.tokengate.test"))
	routes := []harness.Route{
		{Host: "mcp.localhost", Rule: mcpRule("mcp.localhost"), Middleware: harness.PluginMiddleware(harness.Alias, mcp)},
		{Host: "mcpq.localhost", Middleware: harness.PluginMiddleware(harness.Alias, mcpq)},
	}
	tr := startTraefikWith(t, harness.Dynamic(serve(t, backend), routes), harness.Options{Web: web})
	client := harness.Client(nil, nil)
	t.Cleanup(client.CloseIdleConnections)
	waitFor(t, client, resource)
	waitFor(t, client, queryResource+"/")
	calls := counter(t, op, harness.OPIntrospectionPath)

	document := mustJSON(t, map[string]any{
		"resource":                 resource,
		"authorization_servers":    []string{op.Issuer},
		"scopes_supported":         []string{"read", "write"},
		"resource_documentation":   "https://docs.tokengate.test/mcp",
		"resource_name":            "Tokengate MCP",
		"bearer_methods_supported": []string{"header"},
		// The DPoP scheme is accepted (dpop: allowed, the default): its proof algorithms.
		"dpop_signing_alg_values_supported": []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"},
	})
	queryDocument := mustJSON(t, map[string]any{
		"resource":                 queryResource,
		"authorization_servers":    []string{op.Issuer, "https://backup.tokengate.test"},
		"bearer_methods_supported": []string{"header", "query"},
	})

	t.Run("the document", func(t *testing.T) {
		for _, c := range []struct{ url, body string }{
			{"http://mcp.localhost:" + port + prmPath + "/mcp", document},
			{"http://mcp.localhost:" + port + prmPath, document},
			{queryResource + prmPath, queryDocument},
		} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req, err := http.NewRequest(method, c.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				// No token, and forged identity headers: neither matters.
				req.Header.Set("X-Auth-Client", "forged")
				req.Header.Set("X-Auth-Tenant", "acme")
				status, header, body := fetch(t, client, req)
				what := method + " " + c.url
				if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
					t.Errorf("%s: got %d with Content-Type %q, want 200 with application/json", what, status, header.Get("Content-Type"))
				}
				if method == http.MethodGet && body != c.body {
					t.Errorf("%s: got\n%s\nwant\n%s", what, body, c.body)
				}
				if method == http.MethodHead && body != "" {
					t.Errorf("%s: got a body %q", what, body)
				}
				for _, name := range []string{"WWW-Authenticate", "X-Auth-Client", "X-Auth-Tenant", "X-Auth-Scope", harness.BackendHeader} {
					if v := header.Values(name); len(v) != 0 {
						t.Errorf("%s: the answer has %s %q", what, name, v)
					}
				}
			}
		}
		if n := backend.requests.Load(); n != 0 {
			t.Errorf("the backend got %d requests, want none", n)
		}
		assertCount(t, "the document: introspection calls", calls(), 0)
	})

	// Anything else under the well-known path, or another method, is a request of the
	// resource like any other.
	t.Run("other paths and methods", func(t *testing.T) {
		for _, c := range []struct{ method, url string }{
			{http.MethodGet, "http://mcp.localhost:" + port + prmPath + "/other"},
			{http.MethodPost, metadataURL},
		} {
			req, err := http.NewRequest(c.method, c.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := harness.DoWith(client, req)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != http.StatusUnauthorized || a.Seen != nil {
				t.Errorf("%s %s: got %d (backend reached: %v), want the middleware's 401", c.method, c.url, a.Status, a.Seen != nil)
			}
		}
	})

	attr := `, resource_metadata="` + metadataURL + `"`
	acme := tokenAs(t, op, mcpClient, mcpSecret, "read write", resource)
	globex := tokenAs(t, op, globexClient, globexSecret, "read write", resource)
	writeOnly := tokenAs(t, op, mcpClient, mcpSecret, "write", resource)
	t.Run("challenges", func(t *testing.T) {
		for _, c := range []struct {
			what, url, auth string
			status          int
			challenges      []string
			calls           int
		}{
			{"no token", resource, "", 401, []string{`Bearer realm="traefik"` + attr, dpopLine + attr}, 0},
			// The route has requiredScopes: the rule's 403 names them too.
			{"claims rule not met", resource, "Bearer " + globex, 403,
				[]string{`Bearer realm="traefik", error="insufficient_scope", scope="read"` + attr, dpopLine + attr}, 1},
			{"a scope missing", resource, "Bearer " + writeOnly, 403,
				[]string{`Bearer realm="traefik", error="insufficient_scope", scope="read"` + attr, dpopLine + attr}, 1},
			{"an inactive token", resource, "Bearer tokengate-never-issued", 401,
				[]string{`Bearer realm="traefik", error="invalid_token"` + attr, dpopLine + attr}, 1},
			{"no token, a resource without a path", queryResource + "/", "", 401,
				[]string{`Bearer realm="traefik", resource_metadata="` + queryMetadataURL + `"`}, 0},
		} {
			a, err := harness.DoWith(client, get(t, c.url, c.auth))
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != c.status || a.Seen != nil || !slices.Equal(a.Challenges, c.challenges) {
				t.Errorf("%s: got %d (backend reached: %v) with %q, want %d from the middleware with %q",
					c.what, a.Status, a.Seen != nil, a.Challenges, c.status, c.challenges)
			}
			assertCount(t, c.what+": introspection calls", calls(), c.calls)
		}
		a, err := harness.DoWith(client, get(t, resource, "Bearer "+acme))
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusOK || a.Seen == nil || a.Seen.Headers.Get("X-Auth-Tenant") != "acme" {
			t.Errorf("acme's token: got %d (backend reached: %v), want the backend's 200", a.Status, a.Seen != nil)
		}
		assertCount(t, "acme's token: introspection calls", calls(), 1)
	})

	t.Run("MCP client flow", func(t *testing.T) {
		before := backend.requests.Load()
		got := mcpFlow(t, client, resource, mcpClient, mcpSecret)
		if got.Status != http.StatusOK || got.Seen == nil {
			t.Fatalf("the retry got %d (backend reached: %v), want the backend's 200", got.Status, got.Seen != nil)
		}
		for name, want := range map[string]string{"X-Auth-Client": mcpClient, "X-Auth-Tenant": "acme",
			"X-Auth-Scope": "read write", "Authorization": ""} {
			if v := got.Seen.Headers.Get(name); v != want {
				t.Errorf("the backend got %s %q, want %q", name, v, want)
			}
		}
		if n := backend.requests.Load() - before; n != 1 {
			t.Errorf("the backend got %d requests of the flow, want 1 (the retry)", n)
		}
		assertCount(t, "the flow: introspection calls", calls(), 1)
	})
	assertLogHoldsNo(t, tr, acme, globex, writeOnly, claimsSecret, mcpSecret, globexSecret)
}

// mcpFlow is what an MCP client does that knows only the resource's URL and its own client
// credentials (MCP's authorization spec, 2025-06-18): a request without a token, the
// resource_metadata of the 401's challenge (RFC 9728 §5.1), the document there, whose
// resource must be the URL asked for (§3.3), the first of its authorization_servers, that
// server's metadata (RFC 8414 §3), a client_credentials token at its token_endpoint for
// the resource (RFC 8707) with the scopes the document lists, and the request again with
// the token. It returns the last answer.
func mcpFlow(t *testing.T, client *http.Client, resource, id, secret string) harness.Answer {
	t.Helper()
	first, err := harness.DoWith(client, get(t, resource, ""))
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != http.StatusUnauthorized {
		t.Fatalf("without a token: got %d, want 401", first.Status)
	}
	metadataURL := ""
	for _, line := range first.Challenges {
		if scheme, params := parseChallenge(line); strings.EqualFold(scheme, "Bearer") {
			metadataURL = params["resource_metadata"]
		}
	}
	if metadataURL == "" {
		t.Fatalf("no resource_metadata in the Bearer challenge of %q", first.Challenges)
	}

	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	getJSON(t, client, metadataURL, &prm)
	if prm.Resource != resource || len(prm.AuthorizationServers) == 0 {
		t.Fatalf("the document at %s names resource %q and authorization servers %q; want %q and at least one",
			metadataURL, prm.Resource, prm.AuthorizationServers, resource)
	}
	issuer := prm.AuthorizationServers[0]
	var as struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, client, strings.TrimSuffix(issuer, "/")+"/.well-known/oauth-authorization-server", &as)
	if as.Issuer != issuer || as.TokenEndpoint == "" {
		t.Fatalf("the authorization server's metadata names issuer %q and token_endpoint %q; want %q and one", as.Issuer, as.TokenEndpoint, issuer)
	}

	form := url.Values{"grant_type": {"client_credentials"}, "resource": {prm.Resource},
		"scope": {strings.Join(prm.ScopesSupported, " ")}}
	req, err := http.NewRequest(http.MethodPost, as.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	status, _, body := fetch(t, client, req)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); status != http.StatusOK || err != nil || tok.AccessToken == "" {
		t.Fatalf("the token endpoint answered %d: %s", status, body)
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") {
		t.Fatalf("token_type %q, want Bearer", tok.TokenType)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the flow's token was for %s at %s", prm.Resource, as.TokenEndpoint)
		}
	})

	again, err := harness.DoWith(client, get(t, resource, "Bearer "+tok.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	return again
}

// parseChallenge splits one WWW-Authenticate challenge into its scheme and its auth-params
// (RFC 9110 §11.2: token = token / quoted-string, separated by commas).
func parseChallenge(line string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		name, after = strings.TrimSpace(name), strings.TrimSpace(after)
		var value string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			value, after = b.String(), after[min(i+1, len(after)):]
		} else {
			end := strings.IndexByte(after, ',')
			if end < 0 {
				end = len(after)
			}
			value, after = strings.TrimSpace(after[:end]), after[end:]
		}
		params[strings.ToLower(name)] = value
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after), ","))
	}
	return scheme, params
}

// countingBackend is a backend with a page at every path: it answers 200 with what it
// received (harness.Seen), and counts the requests it got.
type countingBackend struct{ requests atomic.Int64 }

func (b *countingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(harness.BackendHeader, "reached")
	_ = json.NewEncoder(w).Encode(harness.Seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Headers: r.Header})
}

// fetch makes req with client and returns the status, the header and the body.
func fetch(t *testing.T, client *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// getJSON GETs url with client and decodes its 200 answer into v.
func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := fetch(t, client, req)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d: %s", url, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// mustJSON is v as json.Marshal writes it: a map's keys sorted.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor waits until Traefik routes url: its answer is no longer Traefik's 404 of no
// router (the middleware's 401, most likely).
func waitFor(t *testing.T, client *http.Client, url string) {
	t.Helper()
	err := harness.WaitUntil(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		a, err := harness.DoWith(client, get(t, url, ""))
		return err == nil && (a.Status != http.StatusNotFound || a.Seen != nil), nil
	})
	if err != nil {
		t.Fatalf("no router for %s: %v", url, err)
	}
}
