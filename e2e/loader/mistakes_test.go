package loader

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigMistakes checks that a typo or a bad value in docker labels stops the
// middleware with an error naming the key, from New or from Traefik's decoding step, and
// that no error shows the client secret.
func TestConfigMistakes(t *testing.T) {
	p := Load(context.Background(), t, os.Environ())
	const secret = "s3cr3t-never-shown"
	const endpoint = "https://auth.example.com/oauth2/introspect"
	missingKey := filepath.Join(t.TempDir(), "no-such-client.pem")

	cases := []struct {
		name string
		set  map[string]string // labels over endpoint, clientId and clientSecret
		drop string            // a label removed from those
		want []string          // the error contains each
	}{
		{"misspelled endpoint", map[string]string{"endpiont": endpoint}, "endpoint", []string{"endpoint"}},
		{"duration without a unit", map[string]string{"cacheTTL": "60"}, "", []string{"cacheTTL", `"60"`}},
		{
			"misspelled clientSecret", map[string]string{"clientSecert": secret, "authMethod": "client_secret_basic"},
			"clientSecret", []string{"clientSecret is missing", "client_secret_basic"},
		},
		{"unknown authMethod", map[string]string{"authMethod": "client_secret_jwk"}, "", []string{"authMethod", "client_secret_jwk"}},
		{"no room for calls", map[string]string{"maxConcurrentIntrospections": "0"}, "", []string{"maxConcurrentIntrospections 0"}},
		{
			"credentials in the endpoint", map[string]string{"endpoint": "https://traefik:" + secret + "@auth.example.com/introspect"},
			"", []string{"endpoint", "<userinfo>@auth.example.com"},
		},
		// These two fail in Traefik's mapstructure step, before New runs.
		{"int that is not a number", map[string]string{"cacheSize": "lots"}, "", []string{"failed to decode configuration", "'cacheSize'", "lots"}},
		{"bool that is not a bool", map[string]string{"sslVerify": "maybe"}, "", []string{"failed to decode configuration", "'sslVerify'", "maybe"}},
		{"optional that is not a bool", map[string]string{"optional": "maybe"}, "", []string{"failed to decode configuration", "'optional'", "maybe"}},
		{
			"privateKeyFile not there", map[string]string{"authMethod": "private_key_jwt", "privateKeyFile": missingKey},
			"clientSecret", []string{"privateKeyFile", missingKey},
		},
		{
			// Switching to private_key_jwt and forgetting to remove the secret's label.
			"clientSecret left beside private_key_jwt", map[string]string{"authMethod": "private_key_jwt", "privateKeyFile": missingKey},
			"", []string{"private_key_jwt", "clientSecret"},
		},
		{"responseFormat jwt without keys", map[string]string{"responseFormat": "jwt"}, "", []string{"responseKeysFile", "jwt"}},
		{
			"forwardIntrospectionJWT without a signed answer", map[string]string{"forwardIntrospectionJWT": "X-Introspection-JWT"},
			"", []string{"forwardIntrospectionJWT", "responseFormat"},
		},
		{
			"tlsCertFile without tlsKeyFile", map[string]string{"authMethod": "tls_client_auth", "tlsCertFile": "/certs/client.crt"},
			"clientSecret", []string{"tlsCertFile", "/certs/client.crt", "tlsKeyFile"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := Keys(endpoint, map[string]string{"clientSecret": secret})
			delete(keys, tc.drop)
			for k, v := range tc.set {
				keys[k] = v
			}
			_, err := p.New(DecodePluginLabels(t, keys), &backend{})
			if err == nil {
				t.Fatalf("New accepted %v", keys)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %q: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the client secret: %v", err)
			}
		})
	}
}
