// Node's oidc-provider (panva/node-oidc-provider), pinned in e2e/oidc-provider and installed
// by make into the cache, run by our script e2e/oidc-provider/server.mjs: the harness
// starts and stops it, asks it for client_credentials tokens (bearer, DPoP-bound or
// certificate-bound), introspects and revokes them, reads its JWKS and the requests it got
// per path, and rotates its signing keys.

package harness

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The paths server.mjs configures (oidc-provider's defaults).
const (
	OPTokenPath         = "/token"
	OPIntrospectionPath = "/token/introspection"
	OPRevocationPath    = "/token/revocation"
	OPJWKSPath          = "/jwks"
	OPDiscoveryPath     = "/.well-known/openid-configuration"
	// RFC 8414's metadata path; oidc-provider serves the same document there.
	OPMetadataPath = "/.well-known/oauth-authorization-server"
)

// Every token is for one resource server, its aud, and carries scopes that server allows.
const (
	OPResource      = "https://api.tokengate.test" // of a token request that names none
	OPOtherResource = "https://other.tokengate.test"
	OPScopes        = "read write" // what both allow, and what the token client may ask for
)

// OPTokenClientID is the client the harness asks for tokens as (client_secret_basic), and
// revokes them with: the client_id of every token.
const (
	OPTokenClientID     = "tokengate-e2e-tokens"
	opTokenClientSecret = "tokengate-e2e-tokens-secret"
)

// OPBoundClientID is the client whose tokens are bound to the certificate of its token
// request (tls_client_certificate_bound_access_tokens, RFC 8705 §3): the client_id of
// every token CertBoundToken gets.
const (
	OPBoundClientID     = "tokengate-e2e-bound"
	opBoundClientSecret = "tokengate-e2e-bound-secret"
)

// OIDCProvider is a running server.mjs. Its three listeners serve all its routes; the HTTPS
// ones ask for client certificates (RFC 8705) and trust the CA's.
type OIDCProvider struct {
	Issuer  string // HTTPURL, or with OPConfig.HTTPSIssuer TLSURL
	HTTPURL string // the plain HTTP listener, where the harness makes its requests
	TLSURL  string // an HTTPS listener
	MTLSURL string // the HTTPS listener that the metadata's mtls_endpoint_aliases name

	ca   *TestCA // signed the HTTPS listeners' certificate
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// OPConfig is what the server registers and where its issuer is.
type OPConfig struct {
	Clients []map[string]any // oidc-provider client metadata, beside the token client
	// HTTPSIssuer makes the issuer the HTTPS listener's URL, so that its metadata is read
	// over TLS; the default is the plain HTTP listener's.
	HTTPSIssuer bool
	// Resources are more resource servers (resource indicator → the scopes its tokens may
	// carry), beside OPResource and OPOtherResource.
	Resources map[string]string
	// ExtraClaims are members that the introspection answer of every access token issued
	// to a client carries, by client_id (oidc-provider's extraTokenClaims). They cannot
	// replace the members oidc-provider sets itself (active, client_id, scope, aud, iss,
	// exp, ...); a sub can be given, since a client_credentials token has none.
	ExtraClaims map[string]map[string]any
}

// OPCalls is how many requests each listener of the server got, per path.
type OPCalls struct {
	HTTP  map[string]int `json:"http"`
	HTTPS map[string]int `json:"https"`
	MTLS  map[string]int `json:"mtls"`
}

// Of is how many requests for path the listeners got.
func (c OPCalls) Of(path string) int { return c.HTTP[path] + c.HTTPS[path] + c.MTLS[path] }

// StartOIDCProvider runs server.mjs with node, oidc-provider loaded from installDir (the
// folder make installs it in, OIDC_PROVIDER_DIR), on free 127.0.0.1 ports. It registers
// config's clients and the token client, serves HTTPS with a certificate from ca, trusts
// ca's client certificates, writes its files under dir, and returns once it answers. Stop
// it with Stop.
func StartOIDCProvider(installDir, dir string, ca *TestCA, config OPConfig) (*OIDCProvider, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH: install Node.js 20 or later and npm (apt-get install nodejs npm)")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	var addrs [3]string // http, https, mtls
	for i := range addrs {
		if addrs[i], err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	p := &OIDCProvider{HTTPURL: "http://" + addrs[0], TLSURL: "https://" + addrs[1], MTLSURL: "https://" + addrs[2],
		ca: ca, done: make(chan struct{})}
	p.Issuer = p.HTTPURL
	if config.HTTPSIssuer {
		p.Issuer = p.TLSURL
	}
	certFile, keyFile, err := ca.ServerCert("oidc-provider")
	if err != nil {
		return nil, err
	}
	all := append([]map[string]any{{
		"client_id":     OPTokenClientID,
		"client_secret": opTokenClientSecret,
		"scope":         OPScopes,
	}, {
		"client_id":     OPBoundClientID,
		"client_secret": opBoundClientSecret,
		"scope":         OPScopes,
		"tls_client_certificate_bound_access_tokens": true,
	}}, config.Clients...)
	resources := map[string]string{OPResource: OPScopes, OPOtherResource: OPScopes}
	for resource, scope := range config.Resources {
		resources[resource] = scope
	}
	serverConfig, err := json.Marshal(map[string]any{
		"issuer":          p.Issuer,
		"http":            addrs[0],
		"https":           addrs[1],
		"mtls":            addrs[2],
		"tls":             map[string]string{"cert": certFile, "key": keyFile, "ca": ca.CertFile},
		"clients":         all,
		"resources":       resources,
		"defaultResource": OPResource,
		"accessTokenTTL":  3600,
		"extraClaims":     config.ExtraClaims,
	})
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(dir, "oidc-provider.json")
	if err := os.WriteFile(configFile, serverConfig, 0o600); err != nil {
		return nil, err
	}

	p.cmd = exec.Command(node, filepath.Join(root, "e2e", "oidc-provider", "server.mjs"), configFile)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "OIDC_PROVIDER_DIR="+installDir)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// Pdeathsig: node dies with us even when the test binary is killed by -timeout.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()

	err = WaitUntil(30*time.Second, 50*time.Millisecond, func() (bool, error) {
		select {
		case <-p.done:
			return false, errors.New("oidc-provider exited before it was ready")
		default:
		}
		_, err := p.Calls()
		return err == nil, nil
	})
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.Output())
	}
	return p, nil
}

// Stop ends the server and waits for it.
func (p *OIDCProvider) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Output is what the server printed; complete once Stop has returned.
func (p *OIDCProvider) Output() string { return p.out.String() }

// Token asks for a client_credentials access token with scope for resource ("" for the
// default one).
func (p *OIDCProvider) Token(scope, resource string) (string, error) {
	return p.TokenAs(OPTokenClientID, opTokenClientSecret, scope, resource)
}

// TokenAs is Token asked as another client registered with OPConfig.Clients, authenticated
// with client_secret_basic: the token's client_id is id, and its answer carries the
// client's ExtraClaims.
func (p *OIDCProvider) TokenAs(id, secret, scope, resource string) (string, error) {
	form := tokenForm(scope)
	if resource != "" {
		form.Set("resource", resource)
	}
	req, err := newFormRequest(p.HTTPURL+OPTokenPath, form, id, secret)
	if err != nil {
		return "", err
	}
	return readToken(http.DefaultClient, req, "Bearer")
}

// DPoPToken asks for a client_credentials access token with scope for the default resource,
// bound to key (RFC 9449 §5): the token request carries a fresh proof of key for the token
// endpoint, and the answer's token_type is DPoP. Its introspection answer carries
// cnf.jkt, key's thumbprint.
func (p *OIDCProvider) DPoPToken(key *DPoPKey, scope string) (string, error) {
	// RFC 9449 §4.2: htu is the token endpoint's URL, as oidc-provider builds it from the
	// request (ctx.oidc.urlFor), here the plain listener's.
	proof, err := key.Proof(http.MethodPost, p.HTTPURL+OPTokenPath, "")
	if err != nil {
		return "", err
	}
	req, err := newFormRequest(p.HTTPURL+OPTokenPath, tokenForm(scope), OPTokenClientID, opTokenClientSecret)
	if err != nil {
		return "", err
	}
	req.Header.Set("DPoP", proof)
	return readToken(http.DefaultClient, req, "DPoP")
}

// CertBoundToken asks for a client_credentials access token with scope for the default
// resource as OPBoundClientID, over the mtls listener with the client certificate in
// certFile and keyFile: the token is bound to that certificate (RFC 8705 §3), its
// introspection answer carries cnf["x5t#S256"], the certificate's SHA-256 thumbprint.
func (p *OIDCProvider) CertBoundToken(certFile, keyFile, scope string) (string, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return "", err
	}
	req, err := newFormRequest(p.MTLSURL+OPTokenPath, tokenForm(scope), OPBoundClientID, opBoundClientSecret)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: p.ca.Pool(),
		// Presented whatever CAs the server names, so that a self-signed certificate can
		// be bound too (RFC 8705 §2.2).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}}}
	defer client.CloseIdleConnections()
	return readToken(client, req, "Bearer")
}

// Introspect is the server's introspection answer for token, asked as the token client.
func (p *OIDCProvider) Introspect(token string) (map[string]any, error) {
	var answer map[string]any
	err := p.post(OPIntrospectionPath, url.Values{"token": {token}}, &answer)
	return answer, err
}

func tokenForm(scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
}

// readToken makes the token request req with client and returns the access token of its
// answer, which must be of tokenType.
func readToken(client *http.Client, req *http.Request, tokenType string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := doJSON(client, req, &tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", errors.New("the token endpoint answered no access_token")
	}
	if tok.TokenType != tokenType {
		return "", fmt.Errorf("the token endpoint answered token_type %q, want %q", tok.TokenType, tokenType)
	}
	return tok.AccessToken, nil
}

// Revoke revokes token (RFC 7009).
func (p *OIDCProvider) Revoke(token string) error {
	return p.post(OPRevocationPath, url.Values{"token": {token}}, nil)
}

// Calls reads the requests each listener got, per path.
func (p *OIDCProvider) Calls() (OPCalls, error) {
	var c OPCalls
	err := p.do(http.MethodGet, "/_test/calls", nil, &c)
	return c, err
}

// JWKS reads the server's public keys at its jwks_uri: one request to OPJWKSPath.
func (p *OIDCProvider) JWKS() ([]byte, error) {
	var raw json.RawMessage
	err := p.do(http.MethodGet, OPJWKSPath, nil, &raw)
	return raw, err
}

// Discovery reads the server's discovery document, as the plain HTTP listener serves it:
// one request to OPDiscoveryPath.
func (p *OIDCProvider) Discovery() (map[string]any, error) {
	var d map[string]any
	err := p.do(http.MethodGet, OPDiscoveryPath, nil, &d)
	return d, err
}

// RotateKeys makes the server sign with new keys under new kids and publish only those.
func (p *OIDCProvider) RotateKeys() error {
	return p.do(http.MethodPost, "/_test/rotate", nil, nil)
}

// post sends form as the token client, authenticated with client_secret_basic.
func (p *OIDCProvider) post(path string, form url.Values, v any) error {
	return p.do(http.MethodPost, path, form, v)
}

func (p *OIDCProvider) do(method, path string, form url.Values, v any) error {
	var req *http.Request
	var err error
	if form != nil {
		req, err = newFormRequest(p.HTTPURL+path, form, OPTokenClientID, opTokenClientSecret)
	} else {
		req, err = http.NewRequest(method, p.HTTPURL+path, nil)
	}
	if err != nil {
		return err
	}
	return doJSON(http.DefaultClient, req, v)
}

// newFormRequest is a POST of form to target as the client id, authenticated with
// client_secret_basic.
func newFormRequest(target string, form url.Values, id, secret string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: form-urlencoded before Basic.
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return req, nil
}

// doJSON makes req with client and decodes its 200 answer into v (unless v is nil).
func doJSON(client *http.Client, req *http.Request, v any) error {
	method, path := req.Method, req.URL.Path
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, body)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: %v", method, path, err)
	}
	return nil
}
