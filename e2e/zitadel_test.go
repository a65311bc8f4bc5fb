package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

// The client the middleware introspects as. Every reserved character of RFC 6749 §2.3.1's
// form-urlencoding is in both: a sender that skips the encoding sends `+` and `%20` that the
// OP decodes to spaces, and `% y` that it cannot decode at all.
const (
	zitadelClientID    = "api:gw/1+x% y"
	zitadelSecret      = "s3:cr/t+%20 x"
	zitadelWrongSecret = "s3:cr/t %20 x"             // the `+` as a space: what `+` decodes to unencoded
	zitadelRedirect    = "http://127.0.0.1/callback" // never contacted: the code is read from Location
	zitadelUser        = "test-user2"                // from storage.NewUserStore, user id2
	zitadelPassword    = "verysecure"
	zitadelSubject     = "id2"
	zitadelKeyID       = "e2e-key" // the kid of our client's private_key_jwt key
)

// zitadel/oidc v3.51.17's example OP checks client_secret_basic credentials at its
// introspection endpoint after URL-decoding them; the middleware must encode them first.
func TestZitadel(t *testing.T) {
	disc := zitadelDiscover(t, startZitadel(t, nil))
	token := zitadelToken(t, disc)
	// Double-quoted YAML strings carry the reserved characters as they are.
	options := func(secret string) string {
		return fmt.Sprintf("endpoint: %q\nauthMethod: client_secret_basic\nclientId: %q\nclientSecret: %q\n"+
			"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false",
			disc.IntrospectionEndpoint, zitadelClientID, secret)
	}
	tr := startRoutes(t, map[string]string{
		"good.localhost":  options(zitadelSecret),
		"wrong.localhost": options(zitadelWrongSecret),
	})

	// First, while nothing is cached: answers are shared per endpoint, client ID and extra
	// headers, not per secret (README "Caching"), so after the good route's call this route
	// would reuse its answer. The OP answers the wrong secret with 401, an endpoint
	// failure: 503, no challenge.
	assertRefused(t, send(t, tr, "wrong.localhost", "/anything", token), http.StatusServiceUnavailable, "")
	assertReached(t, send(t, tr, "good.localhost", "/anything", token), zitadelSubject)
	// The OP answers {"active":false} for a token it cannot decrypt.
	assertRefused(t, send(t, tr, "good.localhost", "/anything", "not-a-zitadel-token"),
		http.StatusUnauthorized, `Bearer realm="traefik", error="invalid_token"`)

	assertLogHoldsNo(t, tr, token, zitadelSecret, zitadelWrongSecret)
}

// zitadel/oidc v3.51.17's example OP accepts private_key_jwt (RFC 7523 §2.2) at its
// introspection endpoint: a JWT signed with a key registered for the client, with iss = sub
// = the client ID, the key's ID as kid, and the OP's issuer in aud (op.VerifyJWTAssertion).
func TestZitadelPrivateKeyJWT(t *testing.T) {
	keyFile, publicKey := writeRSAKey(t, "key.pem")
	disc := zitadelDiscover(t, startZitadel(t, publicKey))
	// Another key under the same key ID: the OP finds the registered key, and the signature
	// does not verify with it.
	otherKeyFile, _ := writeRSAKey(t, "other.pem")
	// The token is requested by the client that then introspects it, as in TestZitadel.
	token := zitadelToken(t, disc)
	options := func(keyFile, audience string) string {
		o := fmt.Sprintf("endpoint: %q\nauthMethod: private_key_jwt\nclientId: %q\n"+
			"privateKeyFile: %q\nkeyId: %q\nforwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false",
			disc.IntrospectionEndpoint, zitadelClientID, keyFile, zitadelKeyID)
		if audience != "" {
			o += fmt.Sprintf("\nassertionAudience: %q", audience)
		}
		return o
	}
	tr := startRoutes(t, map[string]string{
		// The OP requires its issuer in aud, not the endpoint URL (op.VerifyJWTAssertion
		// checks aud against the issuer for every endpoint), so the default audience, the
		// introspection endpoint, does not do here.
		"good.localhost":     options(keyFile, disc.Issuer),
		"endpoint.localhost": options(keyFile, ""),
		"wrong.localhost":    options(otherKeyFile, disc.Issuer),
	})

	// First, while nothing is cached: the three routes share answers (same endpoint and
	// client ID). The OP answers an assertion it refuses with 401, an endpoint failure:
	// 503, no challenge.
	assertRefused(t, send(t, tr, "wrong.localhost", "/anything", token), http.StatusServiceUnavailable, "")
	assertRefused(t, send(t, tr, "endpoint.localhost", "/anything", token), http.StatusServiceUnavailable, "")
	assertReached(t, send(t, tr, "good.localhost", "/anything", token), zitadelSubject)
	// The OP answers {"active":false} for a token it cannot decrypt.
	assertRefused(t, send(t, tr, "good.localhost", "/anything", "not-a-zitadel-token"),
		http.StatusUnauthorized, `Bearer realm="traefik", error="invalid_token"`)

	// Neither the token nor the keys: a line of each key's base64 stands for the key.
	assertLogHoldsNo(t, tr, token, pemLine(t, keyFile), pemLine(t, otherKeyFile))
}

// writeRSAKey writes a new 2048-bit RSA private key for privateKeyFile, and returns the
// file and the public key.
func writeRSAKey(t *testing.T, name string) (string, *rsa.PublicKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return loader.WritePrivateKey(t, name, key), &key.PublicKey
}

// pemLine returns the first line of base64 in the PEM file at path.
func pemLine(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || lines[1] == "" {
		t.Fatalf("%s: no PEM body", path)
	}
	return lines[1]
}

// startZitadel runs the example OP with our client registered, on 127.0.0.1 until the test
// ends, and returns its issuer: its own URL, so the listener exists before the OP is built.
// clientKey, if not nil, is the key our client's private_key_jwt assertions are checked
// with, under zitadelKeyID.
func startZitadel(t *testing.T, clientKey *rsa.PublicKey) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	// A web client authenticates with client_secret_basic; its own storage, not the
	// package-level one storage.RegisterClients fills.
	clients := map[string]*storage.Client{
		zitadelClientID: storage.WebClient(zitadelClientID, zitadelSecret, zitadelRedirect),
	}
	st := zitadelStorage{storage.NewStorageWithClients(storage.NewUserStore(issuer), clients), clientKey}
	// SetupServer allows the http issuer (op.WithAllowInsecure); a nil logger keeps
	// slog's process-wide default as it is.
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
}

// zitadelStorage is the example's storage with one method of ours: the lookup of a
// client's key for private_key_jwt. The example registers one key only, for its "service"
// client: a 1024-bit RSA key compiled in, whose private half it ships as
// example/server/service-key1.pem; the plugin takes no RSA key under 2048 bits (RFC 7518
// §3.3), and the storage has no exported way to register another key. Every check of the
// assertion stays the OP's.
type zitadelStorage struct {
	*storage.Storage
	clientKey *rsa.PublicKey
}

func (s zitadelStorage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	if s.clientKey != nil && clientID == zitadelClientID && keyID == zitadelKeyID {
		return &jose.JSONWebKey{KeyID: keyID, Use: "sig", Key: s.clientKey}, nil
	}
	return s.Storage.GetKeyByIDAndClientID(ctx, keyID, clientID)
}

// zitadelDiscovery is the part of the OP's /.well-known/openid-configuration the test uses.
type zitadelDiscovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

func zitadelDiscover(t *testing.T, issuer string) zitadelDiscovery {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d zitadelDiscovery
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if d.Issuer != issuer || d.IntrospectionEndpoint == "" {
		t.Fatalf("discovery = %+v, want issuer %s and an introspection endpoint", d, issuer)
	}
	return d
}

// zitadelToken runs the authorization code flow the way a browser and our client would:
// authorize, log in on the example's login page, follow the callback to the code, and
// redeem it at the token endpoint. The example stores the access token with the
// requesting client as its audience, and its introspection answers only a client in the
// token's audience (storage.SetIntrospectionFromToken), so the client that requests the
// token is the one the middleware introspects as.
func zitadelToken(t *testing.T, disc zitadelDiscovery) string {
	t.Helper()
	authorize := disc.AuthorizationEndpoint + "?" + url.Values{
		"client_id":     {zitadelClientID},
		"redirect_uri":  {zitadelRedirect},
		"response_type": {"code"},
		"scope":         {"openid"}, // the example puts sub in the introspection answer only for openid
		"state":         {"e2e"},
	}.Encode()
	login := zitadelRedirected(t, http.MethodGet, authorize, nil) // to /login/username?authRequestID=...
	callback := zitadelRedirected(t, http.MethodPost, disc.Issuer+"/login/username", url.Values{
		"id":       {login.Query().Get("authRequestID")},
		"username": {zitadelUser},
		"password": {zitadelPassword},
	})
	code := zitadelRedirected(t, http.MethodGet, callback.String(), nil).Query().Get("code")

	req, err := http.NewRequest(http.MethodPost, disc.TokenEndpoint, strings.NewReader(url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {zitadelRedirect},
	}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(zitadelClientID), url.QueryEscape(zitadelSecret)) // RFC 6749 §2.3.1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token endpoint: status %d, decode error %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// zitadelRedirected makes one request without following redirects and returns where the
// answer's Location points.
func zitadelRedirected(t *testing.T, method, target string, form url.Values) *url.URL {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode/100 != 3 {
		t.Fatalf("%s %s: got %d, want a redirect (%v)", method, req.URL.Path, resp.StatusCode, err)
	}
	return loc
}
