package loader

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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
		return conf.Plugin(t, "api-auth", "introspection")
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
