// The README examples' authorization server, built on go-jose rather than on the plugin's
// JOSE code: their client's credentials and keys, their tokens, and an RFC 7662 endpoint
// that checks client_secret_basic or a private_key_jwt assertion (RFC 7523) and signs
// RFC 9701 answers.

package loader

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The client credentials of the README examples, which the mock authorization server requires.
const (
	ClientID     = "traefik"
	ClientSecret = "change-me"
)

// tokens are the mock authorization server's answers (RFC 7662 §2.2); any other token is inactive.
var tokens = map[string]string{
	"bare-token":   `{"active":true,"sub":"carol"}`,
	"reader-token": `{"active":true,"scope":"read","sub":"bob"}`,
	"writer-token": `{"active":true,"scope":"read write","sub":"alice",` +
		`"aud":"https://api.example.com","iss":"https://auth.example.com"}`,
	// The claims of the README's claims rule: acme's reporting client meets it, globex's
	// client (the same roles, another tenant) does not.
	"acme-token": `{"active":true,"scope":"read","sub":"dave","client_id":"acme-reports",` +
		`"tenant":"acme","roles":["reports","billing"],"ext":{"group":"finance"}}`,
	"globex-token": `{"active":true,"scope":"read","sub":"erin","client_id":"globex-reports",` +
		`"tenant":"globex","roles":["reports"],"ext":{"group":"ops"}}`,
}

// ExampleServer is the README examples' introspection endpoint on 127.0.0.1: it
// authenticates their client, answers for their tokens, plain or signed (RFC 9701), and
// counts its calls.
type ExampleServer struct {
	*httptest.Server
	Calls      atomic.Int64 // the calls it answered, whatever the answer
	Assertions atomic.Int64 // private_key_jwt assertions it verified
	jtis       sync.Map     // their jti: a replayed assertion is refused, as RFC 7523 §3 lets servers do
	signed     atomic.Value // string: the last signed answer it sent
}

// The private_key_jwt client's key and the key the mock signs RFC 9701 answers with, made
// once per test binary: an RSA key takes a while.
var (
	ClientKey = sync.OnceValue(func() *rsa.PrivateKey {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return key
	})
	AnswerKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return key
	})
)

const (
	ClientKID = "traefik-client"       // the keyId label; the mock picks the client's key by it
	AnswerKID = "auth-example-answers" // the kid of the mock's signed answers
	Issuer    = "https://auth.example.com"
)

// StartExampleServer starts an RFC 7662 endpoint that requires a POSTed form with a token
// and the client authenticated either with the README's credentials sent with
// client_secret_basic, or with a private_key_jwt assertion signed by ClientKey. When asked
// for application/token-introspection+jwt it answers as RFC 9701 says.
//
// The assertion is checked and the answer signed with go-jose, not with the plugin's own
// JOSE code: these are interop checks between two implementations.
func StartExampleServer(t testing.TB, useTLS bool) *ExampleServer {
	t.Helper()
	as := &ExampleServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as.Calls.Add(1)
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if err := as.authenticate(r); err != nil {
			t.Logf("the mock refuses the client: %v", err)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if r.PostForm.Get("token") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		answer, ok := tokens[r.PostForm.Get("token")]
		if !ok {
			answer = `{"active":false}`
		}
		if r.Header.Get("Accept") == "application/token-introspection+jwt" {
			signed, err := signAnswer(answer)
			if err != nil {
				t.Errorf("signing the answer: %v", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			as.signed.Store(signed)
			w.Header().Set("Content-Type", "application/token-introspection+jwt")
			_, _ = io.WriteString(w, signed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	})
	as.Server = httptest.NewUnstartedServer(handler)
	as.Config.ErrorLog = log.New(io.Discard, "", 0) // a refused TLS handshake is one case's point
	if useTLS {
		as.StartTLS()
	} else {
		as.Start()
	}
	t.Cleanup(as.Close)
	return as
}

// authenticate accepts exactly one client authentication: client_secret_basic with the
// README's credentials, or a private_key_jwt assertion (RFC 7523 §2.2, §3) from
// ClientID for this endpoint, with nothing else beside it.
func (as *ExampleServer) authenticate(r *http.Request) error {
	id, secret, basic := r.BasicAuth()
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" && !r.PostForm.Has("client_assertion_type") {
		if !basic || id != ClientID || secret != ClientSecret {
			return errors.New("neither the README's client_secret_basic credentials nor a client assertion")
		}
		return nil
	}
	if basic || r.PostForm.Has("client_id") || r.PostForm.Has("client_secret") {
		return errors.New("a client assertion with other credentials beside it")
	}
	if got := r.PostForm.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fmt.Errorf("client_assertion_type %q", got)
	}
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil {
		return fmt.Errorf("client_assertion: %w", err)
	}
	if kid := tok.Headers[0].KeyID; kid != ClientKID {
		return fmt.Errorf("client_assertion kid %q, want %q", kid, ClientKID)
	}
	var claims jwt.Claims
	if err := tok.Claims(&ClientKey().PublicKey, &claims); err != nil {
		return fmt.Errorf("client_assertion signature: %w", err)
	}
	// The plugin's default assertionAudience is the endpoint URL, which is as.URL here; the
	// README's example sets the issuer instead, as many servers want.
	expected := jwt.Expected{Issuer: ClientID, Subject: ClientID, AnyAudience: jwt.Audience{as.URL, Issuer}}
	if err := claims.Validate(expected); err != nil {
		return fmt.Errorf("client_assertion claims %+v: %w", claims, err)
	}
	if claims.Expiry == nil || claims.ID == "" {
		return errors.New("client_assertion without exp or jti")
	}
	if _, replayed := as.jtis.LoadOrStore(claims.ID, true); replayed {
		return fmt.Errorf("client_assertion jti %q replayed", claims.ID)
	}
	as.Assertions.Add(1)
	return nil
}

// LastSigned is the last signed answer the mock sent, "" if none.
func (as *ExampleServer) LastSigned() string {
	s, _ := as.signed.Load().(string)
	return s
}

// signAnswer wraps an RFC 7662 answer in an RFC 9701 JWT for ClientID, signed
// ES256 by AnswerKey.
func signAnswer(answer string) (string, error) {
	return harness.SignJWS(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: AnswerKey(), KeyID: AnswerKID}},
		(&jose.SignerOptions{}).WithType("token-introspection+jwt"), map[string]any{
			"iss":                 Issuer,
			"aud":                 ClientID,
			"iat":                 time.Now().Unix(),
			"token_introspection": json.RawMessage(answer),
		})
}
