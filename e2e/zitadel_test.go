package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
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
)

// zitadel/oidc v3.51.17's example OP checks client_secret_basic credentials at its
// introspection endpoint after URL-decoding them; the middleware must encode them first.
func TestZitadel(t *testing.T) {
	disc := zitadelDiscover(t, startZitadel(t))
	token := zitadelToken(t, disc)
	backend := serve(t, harness.Backend())
	// Double-quoted YAML strings carry the reserved characters as they are.
	options := func(secret string) string {
		return fmt.Sprintf("endpoint: %q\nauthMethod: client_secret_basic\nclientId: %q\nclientSecret: %q\n"+
			"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false",
			disc.IntrospectionEndpoint, zitadelClientID, secret)
	}
	tr := startTraefik(t, harness.Routes(backend, map[string]string{
		"good.localhost":  options(zitadelSecret),
		"wrong.localhost": options(zitadelWrongSecret),
	}))
	waitRouted(t, tr, "good.localhost")

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

// startZitadel runs the example OP with our client registered, on 127.0.0.1 until the test
// ends, and returns its issuer: its own URL, so the listener exists before the OP is built.
func startZitadel(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	// A web client authenticates with client_secret_basic; its own storage, not the
	// package-level one storage.RegisterClients fills.
	clients := map[string]*storage.Client{
		zitadelClientID: storage.WebClient(zitadelClientID, zitadelSecret, zitadelRedirect),
	}
	st := storage.NewStorageWithClients(storage.NewUserStore(issuer), clients)
	// SetupServer allows the http issuer (op.WithAllowInsecure); a nil logger keeps
	// slog's process-wide default as it is.
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
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
