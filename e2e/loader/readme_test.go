package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	introspection "github.com/tokengate/traefik-oauth2-introspection"
)

// readmeBlocks returns the fenced code blocks under each "###" heading of README.md's
// "## Examples" section.
func readmeBlocks(t *testing.T) map[string][]string {
	t.Helper()
	blocks := map[string][]string{}
	inExamples, heading := false, ""
	var block *strings.Builder
	for _, line := range strings.Split(ReadFile(t, "README.md"), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case block != nil && strings.HasPrefix(line, "```"):
			blocks[heading] = append(blocks[heading], block.String())
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "## "):
			inExamples = strings.TrimSpace(line) == "## Examples"
			heading = ""
		case inExamples && strings.HasPrefix(line, "### "):
			heading = strings.TrimSpace(strings.TrimPrefix(line, "### "))
		case inExamples && heading != "" && strings.HasPrefix(line, "```"):
			block = &strings.Builder{}
		}
	}
	return blocks
}

// flatten lists a raw plugin map as dotted keys and lists joined by ",", whatever the
// types the provider gave its values, to compare it with the README.
func flatten(prefix string, raw map[string]interface{}, out map[string]string) map[string]string {
	for k, v := range raw {
		switch v := v.(type) {
		case map[string]interface{}:
			flatten(prefix+k+".", v, out)
		case PluginConf:
			flatten(prefix+k+".", v, out)
		case []interface{}:
			items := make([]string, len(v))
			for i, item := range v {
				items[i] = fmt.Sprint(item)
			}
			out[prefix+k] = strings.Join(items, ",")
		default:
			out[prefix+k] = fmt.Sprint(v)
		}
	}
	return out
}

// TestReadmeExamples decodes each example of README.md's "Examples" section the way its
// provider does, checks the raw map the plugin receives, builds the middleware from it,
// and sends one request through it with the endpoint pointed at a local mock.
func TestReadmeExamples(t *testing.T) {
	blocks := readmeBlocks(t)
	p := Load(context.Background(), t, os.Environ())

	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The files the examples mount from Secrets: the mock's keys, and a client certificate.
	certFile, certKeyFile := WriteCert(t)
	mounted := map[string]string{
		"clientSecretFile": secretFile,
		"privateKeyFile":   WritePrivateKey(t, "client.pem", ClientKey()),
		"responseKeysFile": WriteJWKS(t, "answers.jwks", &AnswerKey().PublicKey),
		"tlsCertFile":      certFile,
		"tlsKeyFile":       certKeyFile,
	}
	for key, file := range sharedCacheFiles(t) {
		mounted[key] = file
	}

	fromFile := func(ext string) func(*testing.T, string) map[string]interface{} {
		return func(t *testing.T, block string) map[string]interface{} {
			conf, err := DecodeFileProvider(block, ext)
			if err != nil {
				t.Fatalf("file provider: %v", err)
			}
			return conf.Plugin(t, "api-auth", "introspection")
		}
	}
	fromCompose := func(t *testing.T, block string) map[string]interface{} {
		return decodeCompose(t, block).Plugin(t, "api-auth", "introspection")
	}
	fromCRD := func(t *testing.T, block string) map[string]interface{} {
		raw := DecodeCRDMiddleware(t, block)["introspection"]
		if raw == nil {
			t.Fatal("spec.plugin has no introspection")
		}
		return raw
	}

	// The sender-constrained example also asks the entry point for client certificates, on
	// the TLS options its router uses: without them req.TLS has none to check.
	senderConstrained := func(t *testing.T, block string) map[string]interface{} {
		conf, err := DecodeFileProvider(block, ".yaml")
		if err != nil {
			t.Fatalf("file provider: %v", err)
		}
		router := conf.HTTP.Routers["api"]
		if conf.TLS == nil || router == nil || router.TLS == nil {
			t.Fatal("the example has no TLS router or no tls.options")
		}
		options := router.TLS.Options
		if options == "" {
			options = "default"
		}
		if got := conf.TLS.Options[options].ClientAuth.ClientAuthType; got != "RequestClientCert" {
			t.Errorf("the router's TLS options %q have clientAuthType %q, want RequestClientCert", options, got)
		}
		return conf.Plugin(t, "api-auth", "introspection")
	}

	// Values every example sets; each case adds its own.
	common := map[string]string{
		"endpoint":                      "https://auth.example.com/oauth2/introspect",
		"clientId":                      ClientID,
		"authMethod":                    "client_secret_basic",
		"forwardHeaders.X-Auth-Subject": "sub",
		"cacheTTL":                      "60s",
	}
	fileProvider := map[string]string{
		"clientSecret": ClientSecret, "requiredScopes": "read", "audiences": "https://api.example.com",
		"issuers": "https://auth.example.com", "forwardHeaders.X-Auth-Scope": "scope", "forwardAuthorization": "false",
	}
	cases := []struct {
		heading string
		pick    string // the block under heading that contains this
		decode  func(*testing.T, string) map[string]interface{}
		want    map[string]string
	}{
		{"File provider (YAML)", "api-auth:", fromFile(".yaml"), fileProvider},
		{"File provider (TOML)", "api-auth", fromFile(".toml"), fileProvider},
		{"Docker labels", "traefik.http.middlewares.api-auth.plugin.introspection.", fromCompose,
			map[string]string{"clientSecret": ClientSecret, "requiredScopes": "read,write"}},
		{"Kubernetes (CRD)", "kind: Middleware", fromCRD, map[string]string{
			"clientSecretFile": "/secrets/introspection/client-secret", "requiredScopes": "read", "audiences": "https://api.example.com",
		}},
		{"Without a shared secret (YAML)", "private_key_jwt", fromFile(".yaml"), map[string]string{
			"authMethod": "private_key_jwt", "privateKeyFile": "/secrets/introspection/client-key.pem", "signingAlg": "PS256",
			"keyId": ClientKID, "assertionAudience": Issuer, "responseFormat": "jwt",
			"responseKeysFile": "/secrets/introspection/auth-server-keys.json", "issuers": Issuer,
			"forwardIntrospectionJWT": "X-Introspection-JWT",
		}},
		{"Without a shared secret (YAML)", "tls_client_auth", fromFile(".yaml"), map[string]string{
			"authMethod": "tls_client_auth", "tlsCertFile": "/secrets/introspection/client.crt",
			"tlsKeyFile": "/secrets/introspection/client.key", "optional": "true",
		}},
		{"Sender-constrained tokens (YAML)", "dpop:", senderConstrained, map[string]string{
			"clientSecretFile": "/secrets/introspection/client-secret", "dpop": "required", "dpopNonce": "true", "certificateBound": "allowed",
		}},
		{replicasHeading, "traefik.http.middlewares.api-auth.plugin.introspection.", fromReplicasCompose, map[string]string{
			"clientSecretFile": "/run/secrets/introspection-client-secret",
			"sharedCache":      "redis://valkey:6379/0", "sharedCacheKeyFile": "/run/secrets/shared-cache-key",
		}},
		{replicasHeading, "kind: Middleware", fromReplicasCRD(blocks[replicasHeading]), map[string]string{
			"clientSecretFile":        "/secrets/introspection/client-secret",
			"sharedCache":             "rediss://tokengate@redis.traefik.svc.cluster.local:6380/0",
			"sharedCachePasswordFile": "/secrets/shared-cache/redis-password", "sharedCacheCAFile": "/secrets/shared-cache/redis-ca.crt",
			"sharedCacheKeyFile": "/secrets/shared-cache/shared-cache-key", "sharedCacheTimeout": "50ms",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.heading+"/"+tc.pick, func(t *testing.T) {
			var block string
			for _, b := range blocks[tc.heading] {
				if strings.Contains(b, tc.pick) {
					block = b
					break
				}
			}
			if block == "" {
				t.Fatalf("README.md has no code block containing %q under \"### %s\" in \"## Examples\"", tc.pick, tc.heading)
			}
			raw := tc.decode(t, block)

			got := flatten("", raw, map[string]string{})
			want := map[string]string{}
			for _, m := range []map[string]string{common, tc.want} { // the case's own values win
				for k, v := range m {
					want[k] = v
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("decoded %s is %q, want %q", k, got[k], v)
				}
			}
			if t.Failed() {
				t.Logf("decoded raw map: %v", raw)
			}

			// The examples read files under /secrets/introspection, mounted from a Secret in
			// the cluster; here those paths point at temporary files instead.
			for key, path := range mounted {
				if _, ok := raw[key]; ok {
					raw[key] = path
				}
			}
			// The shared cache's Redis is not there: the endpoint answers (never a 503 for it).
			if sharedCache, ok := raw["sharedCache"].(string); ok {
				raw["sharedCache"] = unreachableRedis(t, sharedCache)
				assertSharedCacheConfig(t, raw)
			}
			if _, err := p.New(raw, &backend{}); err != nil {
				t.Fatalf("New with the README's configuration: %v", err)
			}
			if _, ok := raw["tlsCertFile"]; ok {
				// The mock does not take client certificates (TestMutualTLS covers them);
				// the example's optional still shows: no token, no call, the next handler.
				next := &backend{}
				h, err := p.New(raw, next)
				if err != nil {
					t.Fatal(err)
				}
				if rec := send(h, ""); rec.Code != http.StatusOK || next.calls != 1 || next.header.Get("X-Auth-Subject") != "" {
					t.Errorf("no token: got %d, next ran %d times with X-Auth-Subject %q; want 200, once, none",
						rec.Code, next.calls, next.header.Get("X-Auth-Subject"))
				}
				return
			}

			as := StartExampleServer(t, false)
			raw["endpoint"] = as.URL
			next := &backend{}
			h, err := p.New(raw, next)
			if err != nil {
				t.Fatalf("New with the endpoint at the mock: %v", err)
			}
			if raw["dpop"] == "required" {
				// Only DPoP-bound tokens pass: a bearer token is refused before any call.
				// TestDPoPProof and e2e's sender tests admit bound ones.
				rec := send(h, "writer-token")
				want := `DPoP error="invalid_token", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`
				if got := rec.Header().Values("WWW-Authenticate"); rec.Code != http.StatusUnauthorized || len(got) != 1 || got[0] != want ||
					next.calls != 0 || as.Calls.Load() != 0 {
					t.Errorf("a bearer token got %d with challenges %q, next ran %d times, the endpoint had %d calls; want 401, %q, none, none",
						rec.Code, got, next.calls, as.Calls.Load(), want)
				}
				return
			}
			rec := send(h, "writer-token")
			wantAuthorization := "Bearer writer-token"
			if got["forwardAuthorization"] == "false" {
				wantAuthorization = ""
			}
			if rec.Code != http.StatusOK || next.calls != 1 {
				t.Fatalf("a token with every claim the example asks for got %d, next ran %d times", rec.Code, next.calls)
			}
			if _, ok := raw["forwardIntrospectionJWT"]; ok {
				if got := next.header.Get("X-Introspection-JWT"); got == "" || got != as.LastSigned() {
					t.Errorf("next received X-Introspection-JWT %q, want the mock's signed answer", got)
				}
			}
			if s, a := next.header.Get("X-Auth-Subject"), next.header.Get("Authorization"); s != "alice" || a != wantAuthorization {
				t.Errorf("next received X-Auth-Subject %q and Authorization %q, want %q and %q", s, a, "alice", wantAuthorization)
			}
		})
	}
}

// decodeCompose decodes the labels of a docker-compose file's service api as Traefik's
// docker provider does.
func decodeCompose(t *testing.T, block string) *Dynamic {
	t.Helper()
	var compose struct {
		Services map[string]struct {
			Labels []string `yaml:"labels"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(block), &compose); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	labels := map[string]string{}
	for _, label := range compose.Services["api"].Labels {
		name, value, ok := strings.Cut(label, "=")
		if !ok {
			t.Fatalf("label %q has no '='", label)
		}
		labels[name] = value
	}
	conf, err := DecodeLabels(labels)
	if err != nil {
		t.Fatalf("docker labels: %v", err)
	}
	return conf
}

// TestReadmeClaimsAndMetadata takes the README's "Claims rules and protected-resource
// metadata" example in its four forms (file provider YAML and TOML, docker labels, a
// Kubernetes Middleware with its IngressRoute): each routes the well-known path to the
// middleware, each decodes to the same Config, compiled and interpreted alike (the claims
// rule to the byte, resourceMetadata's lists whether given as lists or as a comma-separated
// label), and the middleware built from each serves the document the README shows, puts
// resource_metadata on its challenges and judges the rule alike.
func TestReadmeClaimsAndMetadata(t *testing.T) {
	const (
		heading     = "Claims rules and protected-resource metadata"
		rule        = "Host(`api.example.com`) && (PathPrefix(`/mcp`) || PathPrefix(`/.well-known/oauth-protected-resource`))"
		claims      = "Equals(`tenant`, `acme`) && (Contains(`roles`, `reports`) || Equals(`ext.group`, `ops`))"
		metadataURL = "https://api.example.com/.well-known/oauth-protected-resource/mcp"
		dpopAlgs    = `DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`
	)
	blocks := readmeBlocks(t)[heading]
	pick := func(t *testing.T, contains string) string {
		t.Helper()
		var found []string
		for _, b := range blocks {
			if strings.Contains(b, contains) {
				found = append(found, b)
			}
		}
		if len(found) != 1 {
			t.Fatalf("README.md has %d code blocks containing %q under \"### %s\" in \"## Examples\", want 1", len(found), contains, heading)
		}
		return found[0]
	}
	fromFile := func(ext, contains string) func(t *testing.T) (map[string]interface{}, string) {
		return func(t *testing.T) (map[string]interface{}, string) {
			conf, err := DecodeFileProvider(pick(t, contains), ext)
			if err != nil {
				t.Fatalf("file provider: %v", err)
			}
			router := conf.HTTP.Routers["api"]
			if router == nil {
				t.Fatal("the example has no router api")
			}
			return conf.Plugin(t, "api-auth", "introspection"), router.Rule
		}
	}
	forms := []struct {
		name   string
		decode func(t *testing.T) (raw map[string]interface{}, rule string)
	}{
		{"file provider (YAML)", fromFile(".yaml", "  middlewares:\n    api-auth:")},
		{"file provider (TOML)", fromFile(".toml", "[http.middlewares.api-auth.plugin.introspection]")},
		{"docker labels", func(t *testing.T) (map[string]interface{}, string) {
			conf := decodeCompose(t, pick(t, "traefik.http.middlewares.api-auth.plugin.introspection.claims="))
			router := conf.HTTP.Routers["api"]
			if router == nil {
				t.Fatal("the labels have no router api")
			}
			return conf.Plugin(t, "api-auth", "introspection"), router.Rule
		}},
		{"Kubernetes (CRD)", func(t *testing.T) (map[string]interface{}, string) {
			raw := DecodeCRDMiddleware(t, pick(t, "kind: Middleware"))["introspection"]
			if raw == nil {
				t.Fatal("spec.plugin has no introspection")
			}
			var route struct {
				Spec struct {
					Routes []struct {
						Match       string
						Middlewares []struct{ Name string }
					}
				}
			}
			if err := yaml.Unmarshal([]byte(pick(t, "kind: IngressRoute")), &route); err != nil || len(route.Spec.Routes) != 1 {
				t.Fatalf("the IngressRoute: %v, %d routes", err, len(route.Spec.Routes))
			}
			if mw := route.Spec.Routes[0].Middlewares; len(mw) != 1 || mw[0].Name != "api-auth" {
				t.Errorf("the IngressRoute's middlewares are %v, want api-auth", mw)
			}
			return raw, route.Spec.Routes[0].Match
		}},
	}
	document := strings.TrimSpace(pick(t, `{"authorization_servers":`))
	wantMetadata := map[string]interface{}{
		"resource":              "https://api.example.com/mcp",
		"authorization_servers": []interface{}{"https://auth.example.com", "https://auth-backup.example.com"},
		"scopes_supported":      []interface{}{"read"},
	}

	// What the plugin logs, compiled (Go's log) and interpreted (yaegi's log on the
	// interpreter's stderr, with the date and time first), goes to one buffer.
	logged := captureLog(t)
	p := LoadWith(context.Background(), t, os.Environ(), logged)
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Every middleware here is api-auth@file, which may log 10 lines a second in each world:
	// the four forms refuse two requests each.
	configs := map[string]string{} // form → its Config as JSON, resourceMetadata's lists as lists
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) {
			raw, gotRule := form.decode(t)
			if gotRule != rule {
				t.Errorf("the router's rule is %q, want %q: the well-known path must reach the middleware", gotRule, rule)
			}
			if raw["clientSecretFile"] != "/secrets/introspection/client-secret" {
				t.Fatalf("clientSecretFile is %v, want the mounted Secret's file", raw["clientSecretFile"])
			}
			raw["clientSecretFile"] = secretFile // mounted from a Secret in the cluster

			compiled := introspection.CreateConfig()
			if err := DecodeConfig(compiled, raw); err != nil {
				t.Fatalf("decoding into the compiled Config: %v", err)
			}
			interpreted, err := p.Config(raw)
			if err != nil {
				t.Fatalf("decoding into the interpreted Config: %v", err)
			}
			if c, i := asJSON(t, compiled), asJSON(t, interpreted.Interface()); c != i {
				t.Errorf("compiled and interpreted, the Config differs:\n%s\n%s", c, i)
			}
			v := reflect.ValueOf(compiled).Elem()
			field := func(name string) reflect.Value {
				f := v.FieldByName(name)
				if !f.IsValid() {
					t.Fatalf("Config has no field %s", name)
				}
				return f
			}
			if got := field("Claims").String(); got != claims {
				t.Errorf("Claims is %q, want %q", got, claims)
			}
			for _, name := range []string{"ErrorDescription", "LogRejections"} {
				if !field(name).Bool() {
					t.Errorf("%s is false, want true", name)
				}
			}
			metadata, _ := field("ResourceMetadata").Interface().(map[string]interface{})
			metadata = normalizeMetadata(metadata)
			if !reflect.DeepEqual(metadata, wantMetadata) {
				t.Errorf("ResourceMetadata is %#v, want the equivalent of %#v", metadata, wantMetadata)
			}
			field("ResourceMetadata").Set(reflect.ValueOf(metadata))
			configs[form.name] = asJSON(t, compiled)

			builds := []struct {
				name string
				new  func(map[string]interface{}, http.Handler) (http.Handler, error)
			}{
				{"compiled", func(raw map[string]interface{}, next http.Handler) (http.Handler, error) {
					config := introspection.CreateConfig()
					if err := DecodeConfig(config, raw); err != nil {
						return nil, err
					}
					return introspection.New(context.Background(), next, config, "api-auth@file")
				}},
				{"interpreted", p.New},
			}
			for _, build := range builds {
				as := StartExampleServer(t, false) // its own cache in each world
				withEndpoint := map[string]interface{}{}
				for k, v := range raw {
					withEndpoint[k] = v
				}
				withEndpoint["endpoint"] = as.URL
				next := &backend{}
				h, err := build.new(withEndpoint, next)
				if err != nil {
					t.Fatalf("%s: New: %v", build.name, err)
				}
				what := func(s string) string { return build.name + ", " + s }

				for _, method := range []string{http.MethodGet, http.MethodHead} {
					for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(method, "https://api.example.com"+path, nil))
						if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
							t.Errorf("%s: got %d with Content-Type %q, want 200 with application/json",
								what(method+" "+path), rec.Code, rec.Header().Get("Content-Type"))
						}
						if method == http.MethodGet && rec.Body.String() != document {
							t.Errorf("%s: got\n%s\nwant the README's\n%s", what(method+" "+path), rec.Body.String(), document)
						}
					}
				}
				if next.calls != 0 || as.Calls.Load() != 0 {
					t.Errorf("%s: the document reached next %d times and the endpoint %d times, want neither", what("the document"), next.calls, as.Calls.Load())
				}

				attr := `, resource_metadata="` + metadataURL + `"`
				for _, c := range []struct {
					token      string
					status     int
					challenges []string
				}{
					{"", http.StatusUnauthorized, []string{`Bearer realm="traefik"` + attr, dpopAlgs + attr}},
					{"acme-token", http.StatusOK, nil},
					// The example has requiredScopes: the rule's 403 names them too.
					{"globex-token", http.StatusForbidden, []string{
						`Bearer realm="traefik", error="insufficient_scope", error_description="claims rule not met", scope="read"` + attr,
						dpopAlgs + attr}},
				} {
					req := httptest.NewRequest(http.MethodGet, "https://api.example.com/mcp", nil)
					if c.token != "" {
						req.Header.Set("Authorization", "Bearer "+c.token)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if got := rec.Header().Values("WWW-Authenticate"); rec.Code != c.status || !reflect.DeepEqual(got, c.challenges) {
						t.Errorf("%s: got %d with %q, want %d with %q", what("token "+c.token), rec.Code, got, c.status, c.challenges)
					}
				}
				if next.calls != 1 || as.Calls.Load() != 2 {
					t.Errorf("%s: next ran %d times and the endpoint had %d calls, want 1 and 2", what("the tokens"), next.calls, as.Calls.Load())
				}
				const line = `api-auth@file: refused 403: claims rule not met, sub "erin", client_id "globex-reports"`
				if n := countLines(logged.String(), line); n != 1 {
					t.Errorf("%s: the log has %d lines %q, want 1:\n%s", what("logRejections"), n, line, logged.String())
				}
				for _, token := range []string{"acme-token", "globex-token", ClientSecret} {
					if strings.Contains(logged.String(), token) {
						t.Errorf("%s: the log shows %q", what("logRejections"), token)
					}
				}
				logged.Reset()
			}
		})
	}
	for _, form := range forms[1:] {
		if configs[form.name] != configs[forms[0].name] {
			t.Errorf("%s and %s give different Configs:\n%s\n%s", form.name, forms[0].name, configs[form.name], configs[forms[0].name])
		}
	}
}

// normalizeMetadata is resourceMetadata with each RFC 9728 §2 list member as a list of
// strings, whether given as a list or as a comma-separated string (a docker label).
func normalizeMetadata(m map[string]interface{}) map[string]interface{} {
	lists := map[string]bool{"authorization_servers": true, "scopes_supported": true, "bearer_methods_supported": true,
		"resource_signing_alg_values_supported": true, "resource_encryption_alg_values_supported": true,
		"resource_encryption_enc_values_supported": true, "authorization_details_types_supported": true,
		"dpop_signing_alg_values_supported": true}
	out := map[string]interface{}{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if !lists[k] {
				out[k] = v
				continue
			}
			items := []interface{}{}
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			out[k] = items
		case []interface{}:
			items := make([]interface{}, len(v))
			for i, item := range v {
				items[i] = fmt.Sprint(item)
			}
			out[k] = items
		default:
			out[k] = v
		}
	}
	return out
}

func asJSON(t *testing.T, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logBuffer holds what Go's standard log wrote while it was captured.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

// captureLog sends Go's standard log, which the compiled plugin writes to, to a buffer
// until the test ends.
func captureLog(t *testing.T) *logBuffer {
	t.Helper()
	l := &logBuffer{}
	w, flags := log.Writer(), log.Flags()
	log.SetOutput(l)
	log.SetFlags(0)
	t.Cleanup(func() {
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	return l
}

// countLines is how many lines of log are line, after the date and time that yaegi's own
// log puts first.
func countLines(log, line string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if l == line || strings.HasSuffix(l, " "+line) {
			n++
		}
	}
	return n
}
