package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// The middleware against Ory Hydra v2.3: real client_credentials tokens, Hydra's admin
// introspection endpoint, and a real revocation. Two routes ask for different scopes.
// They share no middleware, but they call one endpoint as one client, so by design they
// share one cache (README "Caching"), each with its own cacheTTL.
func TestHydra(t *testing.T) {
	const (
		readHost  = "read.localhost"  // requires scope read; cacheTTL 1s: the revocation route
		writeHost = "write.localhost" // requires scope write; cacheTTL 10m
		noToken   = `Bearer realm="traefik"`
		invalid   = `Bearer realm="traefik", error="invalid_token"`
	)
	hydra := startHydra(t)
	client := hydra.createClient(t, "read write")
	// Hydra's admin introspection takes no client authentication: authMethod none.
	options := func(scope, cacheTTL string) string {
		return fmt.Sprintf("endpoint: %s/admin/oauth2/introspect\nauthMethod: none\nrequiredScopes: [%s]\n"+
			"forwardHeaders: {X-Auth-Subject: sub}\nforwardAuthorization: false\ncacheTTL: %s",
			hydra.admin, scope, cacheTTL)
	}
	tr := startRoutes(t, map[string]string{
		readHost:  options("read", "1s"),
		writeHost: options("write", "10m"),
	})

	// For a client_credentials token Hydra's sub is the client ID.
	readToken := hydra.token(t, client, "read")
	bothToken := hydra.token(t, client, "read write")
	revokedToken := hydra.token(t, client, "read write")
	const unknownToken = "ory_at_unknownToHydra.0123456789abcdef" // a b64token Hydra never issued

	t.Run("no token", func(t *testing.T) {
		assertRefused(t, send(t, tr, readHost, "/", ""), http.StatusUnauthorized, noToken)
		assertRefused(t, send(t, tr, writeHost, "/", ""), http.StatusUnauthorized, noToken)
	})
	t.Run("token unknown to Hydra", func(t *testing.T) {
		assertRefused(t, send(t, tr, readHost, "/", unknownToken), http.StatusUnauthorized, invalid)
	})
	t.Run("scope read passes the read route", func(t *testing.T) {
		assertReached(t, send(t, tr, readHost, "/", readToken), client.id)
	})
	t.Run("scope read lacks write", func(t *testing.T) {
		assertRefused(t, send(t, tr, writeHost, "/", readToken), http.StatusForbidden,
			`Bearer realm="traefik", error="insufficient_scope", scope="write"`)
	})
	t.Run("scope read write passes both routes", func(t *testing.T) {
		assertReached(t, send(t, tr, readHost, "/", bothToken), client.id)
		assertReached(t, send(t, tr, writeHost, "/", bothToken), client.id)
	})
	t.Run("revoked token is refused once cacheTTL has run out", func(t *testing.T) {
		// Only the write route sees the token before revocation, so the shared cache holds
		// Hydra's "active" for the write route's 10m.
		assertReached(t, send(t, tr, writeHost, "/", revokedToken), client.id)
		hydra.revoke(t, client, revokedToken)

		// RFC 7662 §4: cacheTTL is the revocation window; within it the cached answer stands.
		assertReached(t, send(t, tr, writeHost, "/", revokedToken), client.id)

		// The read route gives the same entry only its own 1s, then asks Hydra again.
		assertRefused(t, sendUntilRefused(t, tr, readHost, revokedToken), http.StatusUnauthorized, invalid)

		// Hydra's "inactive" replaced the entry in the shared cache: the write route's
		// window closes too.
		assertRefused(t, send(t, tr, writeHost, "/", revokedToken), http.StatusUnauthorized, invalid)
	})

	assertLogHoldsNo(t, tr, readToken, bothToken, revokedToken, unknownToken, client.secret)
}

// sendUntilRefused repeats the request while it reaches the backend and returns the first
// answer that does not, or the last one after 30 s.
func sendUntilRefused(t *testing.T, tr *harness.Traefik, host, token string) harness.Answer {
	t.Helper()
	var a harness.Answer
	_ = harness.WaitUntil(30*time.Second, 100*time.Millisecond, func() (bool, error) {
		a = send(t, tr, host, "/", token)
		return a.Seen == nil, nil
	})
	return a
}

// hydraServer is a running Ory Hydra with an in-memory database.
type hydraServer struct {
	public string // the OAuth2 endpoints: /oauth2/token, /oauth2/revoke
	admin  string // /admin/clients, /admin/oauth2/introspect, /health/ready
}

// hydraClient is an OAuth2 client registered at Hydra.
type hydraClient struct {
	id, secret string
}

// startHydra runs `hydra serve all` on two free 127.0.0.1 ports until the test ends and
// waits until it is ready. Its output is printed if the test fails.
func startHydra(t *testing.T) *hydraServer {
	t.Helper()
	public, publicPort := hydraAddr(t)
	admin, adminPort := hydraAddr(t)
	cmd := exec.Command(peer(t, "HYDRA_BIN"), "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SECRETS_SYSTEM=tokengate-e2e-hydra-system-secret",
		"URLS_SELF_ISSUER=http://"+public, // --dev allows an http issuer
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+publicPort,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+adminPort,
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Pdeathsig: Hydra dies with us even when the test binary is killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited // out is complete only once Wait has returned
		if t.Failed() {
			t.Logf("hydra output:\n%s", out.String())
		}
	})

	h := &hydraServer{public: "http://" + public, admin: "http://" + admin}
	err := harness.WaitUntil(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-exited:
			return false, errors.New("hydra exited before it was ready")
		default:
		}
		return hydraReady(h.admin), nil
	})
	if err != nil {
		t.Fatalf("hydra not ready: %v", err)
	}
	return h
}

// createClient registers a client_credentials client, as `hydra create client` does.
func (h *hydraServer) createClient(t *testing.T, scope string) hydraClient {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"grant_types":                []string{"client_credentials"},
		"scope":                      scope,
		"token_endpoint_auth_method": "client_secret_basic",
	})
	req, _ := http.NewRequest(http.MethodPost, h.admin+"/admin/clients", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	hydraDo(t, req, http.StatusCreated, &c)
	return hydraClient{id: c.ID, secret: c.Secret}
}

// token asks for a client_credentials access token with scope.
func (h *hydraServer) token(t *testing.T, c hydraClient, scope string) string {
	t.Helper()
	req := c.post(h.public+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	hydraDo(t, req, http.StatusOK, &tok)
	return tok.AccessToken
}

// revoke revokes token at Hydra (RFC 7009).
func (h *hydraServer) revoke(t *testing.T, c hydraClient, token string) {
	t.Helper()
	hydraDo(t, c.post(h.public+"/oauth2/revoke", url.Values{"token": {token}}), http.StatusOK, nil)
}

// post is a form POST authenticated with client_secret_basic: RFC 6749 §2.3.1 has the ID
// and secret form-urlencoded before they go into HTTP Basic.
func (c hydraClient) post(endpoint string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	return req
}

// hydraDo sends req, fails unless Hydra answers want, and decodes the JSON answer into v.
func hydraDo(t *testing.T, req *http.Request, want int, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: got %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, body.Bytes())
	}
	if v != nil {
		if err := json.Unmarshal(body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
		}
	}
}

// hydraReady reports whether Hydra's admin API says it is ready to serve.
func hydraReady(admin string) bool {
	resp, err := http.Get(admin + "/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hydraAddr returns a free 127.0.0.1 address and its port.
func hydraAddr(t *testing.T) (addr, port string) {
	t.Helper()
	addr, err := harness.FreeAddr()
	if err == nil {
		_, port, err = net.SplitHostPort(addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return addr, port
}
