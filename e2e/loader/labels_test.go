package loader

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// TestDockerLabels checks that values typed as docker label strings keep their meaning after
// paerser's label parser and Traefik's mapstructure step: lists, maps, durations, booleans.
func TestDockerLabels(t *testing.T) {
	p := Load(context.Background(), t, os.Environ())
	const scopeChallenge = `Bearer realm="traefik", error="insufficient_scope", scope="read write"`
	const invalidChallenge = `Bearer realm="traefik", error="invalid_token"`

	privateKeyFile := WritePrivateKey(t, "client.pem", ClientKey())
	responseKeysFile := WriteJWKS(t, "answers.jwks", &AnswerKey().PublicKey)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The same kid with another key: the signature itself must fail, not the key lookup.
	otherKeysFile := WriteJWKS(t, "other.jwks", &otherKey.PublicKey)

	cases := []struct {
		name       string
		labels     map[string]string // plugin keys beyond endpoint, clientId and clientSecret
		tls        bool              // the endpoint serves a self-signed certificate
		token      string
		requests   int
		wantStatus int
		wantAuthn  string            // WWW-Authenticate
		wantNext   map[string]string // headers next receives; "" means absent
		wantSigned string            // the header in which next receives the mock's signed answer
		wantCalls  int64
	}{
		{
			name: "list as a comma-separated string: one scope missing", labels: map[string]string{"requiredScopes": "read,write"},
			token: "reader-token", requests: 1, wantStatus: http.StatusForbidden, wantAuthn: scopeChallenge, wantCalls: 1,
		},
		{
			name: "list as a comma-separated string: both scopes", labels: map[string]string{"requiredScopes": "read,write"},
			token: "writer-token", requests: 1, wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			name: "map entry as a dotted label", labels: map[string]string{"forwardHeaders.X-Auth-Subject": "sub"},
			token: "writer-token", requests: 1, wantStatus: http.StatusOK, wantNext: map[string]string{"X-Auth-Subject": "alice"}, wantCalls: 1,
		},
		{
			name: "duration string: cacheTTL=60s reuses the answer", labels: map[string]string{"cacheTTL": "60s"},
			token: "writer-token", requests: 2, wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			name: "duration string: cacheTTL=0s asks every time", labels: map[string]string{"cacheTTL": "0s"},
			token: "writer-token", requests: 2, wantStatus: http.StatusOK, wantCalls: 2,
		},
		{
			name: "boolean string: forwardAuthorization=false", labels: map[string]string{"forwardAuthorization": "false"},
			token: "writer-token", requests: 1, wantStatus: http.StatusOK, wantNext: map[string]string{"Authorization": ""}, wantCalls: 1,
		},
		{
			name: "boolean string: forwardAuthorization=true", labels: map[string]string{"forwardAuthorization": "true"},
			token: "writer-token", requests: 1, wantStatus: http.StatusOK, wantNext: map[string]string{"Authorization": "Bearer writer-token"}, wantCalls: 1,
		},
		{
			name: "boolean string: sslVerify=false accepts a self-signed endpoint", labels: map[string]string{"sslVerify": "false"}, tls: true,
			token: "writer-token", requests: 1, wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			name: "sslVerify left at true refuses a self-signed endpoint", tls: true,
			token: "writer-token", requests: 1, wantStatus: http.StatusServiceUnavailable, wantCalls: 0,
		},
		{
			name: "boolean string: optional=true lets a request without a token through", labels: map[string]string{"optional": "true"},
			token: "", requests: 1, wantStatus: http.StatusOK, wantCalls: 0,
		},
		{
			name: "optional=true still refuses an inactive token", labels: map[string]string{"optional": "true"},
			token: "revoked-token", requests: 1, wantStatus: http.StatusUnauthorized, wantAuthn: invalidChallenge, wantCalls: 1,
		},
		{
			// clientSecret= is what compose makes of clientSecret=${UNSET}: paerser keeps the
			// empty string, which New takes as no secret.
			name: "private_key_jwt: a fresh assertion per call",
			labels: map[string]string{
				"clientSecret": "", "authMethod": "private_key_jwt", "privateKeyFile": privateKeyFile,
				"keyId": ClientKID, "cacheTTL": "0s",
			},
			token: "writer-token", requests: 2, wantStatus: http.StatusOK, wantCalls: 2,
		},
		{
			name: "responseFormat=jwt: the signed answer is read and forwarded",
			labels: map[string]string{
				"responseFormat": "jwt", "responseKeysFile": responseKeysFile,
				"forwardIntrospectionJWT": "X-Introspection-JWT", "forwardHeaders.X-Auth-Subject": "sub",
			},
			token: "writer-token", requests: 1, wantStatus: http.StatusOK,
			wantNext: map[string]string{"X-Auth-Subject": "alice"}, wantSigned: "X-Introspection-JWT", wantCalls: 1,
		},
		{
			name:   "responseFormat=jwt: an answer signed by a key not in responseKeysFile",
			labels: map[string]string{"responseFormat": "jwt", "responseKeysFile": otherKeysFile},
			token:  "writer-token", requests: 1, wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			as := StartExampleServer(t, tc.tls) // a new endpoint URL each: no cache shared between rows
			next := &backend{}
			h, err := p.New(DecodePluginLabels(t, Keys(as.URL, tc.labels)), next)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			var rec *httptest.ResponseRecorder
			for n := 0; n < tc.requests; n++ {
				rec = send(h, tc.token)
			}
			if rec.Code != tc.wantStatus || rec.Header().Get("WWW-Authenticate") != tc.wantAuthn {
				t.Errorf("got %d with WWW-Authenticate %q, want %d with %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tc.wantStatus, tc.wantAuthn)
			}
			wantNextCalls := 0
			if tc.wantStatus == http.StatusOK {
				wantNextCalls = tc.requests
			}
			if next.calls != wantNextCalls {
				t.Errorf("next ran %d times, want %d", next.calls, wantNextCalls)
			}
			for name, want := range tc.wantNext {
				if got := next.header.Get(name); got != want {
					t.Errorf("next received %s %q, want %q", name, got, want)
				}
			}
			if got := as.Calls.Load(); got != tc.wantCalls {
				t.Errorf("the authorization server got %d calls, want %d", got, tc.wantCalls)
			}
			wantAssertions := int64(0)
			if tc.labels["authMethod"] == "private_key_jwt" {
				wantAssertions = tc.wantCalls
			}
			if got := as.Assertions.Load(); got != wantAssertions {
				t.Errorf("the authorization server verified %d client assertions, want %d", got, wantAssertions)
			}
			if tc.wantSigned != "" {
				if got, sent := next.header.Get(tc.wantSigned), as.LastSigned(); sent == "" || got != sent {
					t.Errorf("next received %s %q, want the signed answer the mock sent, %q", tc.wantSigned, got, sent)
				}
			}
		})
	}

	// Traefik runs CreateConfig for each middleware, and mapstructure writes into the default
	// slices and maps it is given: what one instance decodes must not reach the next one.
	t.Run("instances do not share decoded lists and maps", func(t *testing.T) {
		as := StartExampleServer(t, false)
		strict, err := p.New(DecodePluginLabels(t, Keys(as.URL, map[string]string{
			"requiredScopes": "read,write", "forwardHeaders.X-Auth-Subject": "sub",
		})), &backend{})
		if err != nil {
			t.Fatal(err)
		}
		next := &backend{}
		open, err := p.New(DecodePluginLabels(t, Keys(as.URL, nil)), next)
		if err != nil {
			t.Fatal(err)
		}
		if got := send(open, "bare-token").Code; got != http.StatusOK || next.header.Get("X-Auth-Subject") != "" {
			t.Errorf("the plain instance answered %d and set X-Auth-Subject %q, want 200 and none", got, next.header.Get("X-Auth-Subject"))
		}
		if got := send(strict, "reader-token").Code; got != http.StatusForbidden {
			t.Errorf("the instance with requiredScopes read,write answered %d, want 403", got)
		}
	})
}
