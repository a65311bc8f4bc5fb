package e2e_test

// Loader tests: the plugin as Traefik v3.6.12 loads it, with no network and no Traefik
// binary. Each step mirrors a named function of Traefik or of the catalog analyzer
// (traefik/piceus) without importing either.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mitchellh/mapstructure"
	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/parser"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"gopkg.in/yaml.v3"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// loaderRepo is the plugin's repository root, seen from the e2e module (the test's working directory).
const loaderRepo = ".."

// The client credentials of the README examples, which the mock authorization server requires.
const (
	loaderClientID     = "traefik"
	loaderClientSecret = "change-me"
)

// loaderManifest holds the .traefik.yml fields read by Traefik (pkg/plugins/types.go Manifest)
// and by piceus (pkg/core/types.go Manifest, which adds iconPath and bannerPath).
type loaderManifest struct {
	DisplayName string                 `json:"displayName,omitempty" toml:"displayName,omitempty" yaml:"displayName,omitempty"`
	Type        string                 `json:"type,omitempty" toml:"type,omitempty" yaml:"type,omitempty"`
	Import      string                 `json:"import,omitempty" toml:"import,omitempty" yaml:"import,omitempty"`
	BasePkg     string                 `json:"basePkg,omitempty" toml:"basePkg,omitempty" yaml:"basePkg,omitempty"`
	Summary     string                 `json:"summary,omitempty" toml:"summary,omitempty" yaml:"summary,omitempty"`
	IconPath    string                 `json:"iconPath,omitempty" toml:"iconPath,omitempty" yaml:"iconPath,omitempty"`
	BannerPath  string                 `json:"bannerPath,omitempty" toml:"bannerPath,omitempty" yaml:"bannerPath,omitempty"`
	TestData    map[string]interface{} `json:"testData,omitempty" toml:"testData,omitempty" yaml:"testData,omitempty"`
}

// The part of Traefik's dynamic configuration (pkg/config/dynamic) that the README examples
// use, with Traefik's struct tags: paerser refuses keys its target does not have.
type (
	loaderDynamic struct {
		HTTP *loaderHTTP `json:"http,omitempty" toml:"http,omitempty" yaml:"http,omitempty" export:"true"`
	}
	loaderHTTP struct {
		Routers     map[string]*loaderRouter     `json:"routers,omitempty" toml:"routers,omitempty" yaml:"routers,omitempty" export:"true"`
		Services    map[string]*loaderService    `json:"services,omitempty" toml:"services,omitempty" yaml:"services,omitempty" export:"true"`
		Middlewares map[string]*loaderMiddleware `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
	}
	loaderRouter struct {
		EntryPoints []string `json:"entryPoints,omitempty" toml:"entryPoints,omitempty" yaml:"entryPoints,omitempty" export:"true"`
		Middlewares []string `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
		Service     string   `json:"service,omitempty" toml:"service,omitempty" yaml:"service,omitempty" export:"true"`
		Rule        string   `json:"rule,omitempty" toml:"rule,omitempty" yaml:"rule,omitempty"`
	}
	loaderService struct {
		LoadBalancer *loaderLoadBalancer `json:"loadBalancer,omitempty" toml:"loadBalancer,omitempty" yaml:"loadBalancer,omitempty" export:"true"`
	}
	loaderLoadBalancer struct {
		Servers []loaderServer `json:"servers,omitempty" toml:"servers,omitempty" yaml:"servers,omitempty" label-slice-as-struct:"server" export:"true"`
	}
	loaderServer struct {
		URL string `json:"url,omitempty" toml:"url,omitempty" yaml:"url,omitempty"`
	}
	loaderMiddleware struct {
		Plugin map[string]loaderPluginConf `json:"plugin,omitempty" toml:"plugin,omitempty" yaml:"plugin,omitempty" export:"true"`
	}
	// loaderPluginConf is dynamic.PluginConf: the raw map handed to the plugin loader.
	loaderPluginConf map[string]interface{}
)

// pluginConf returns http.middlewares.<middleware>.plugin.<alias>, failing if it is absent.
func (c *loaderDynamic) pluginConf(t testing.TB, middleware, alias string) map[string]interface{} {
	t.Helper()
	if c.HTTP != nil && c.HTTP.Middlewares[middleware] != nil && c.HTTP.Middlewares[middleware].Plugin[alias] != nil {
		return c.HTTP.Middlewares[middleware].Plugin[alias]
	}
	t.Fatalf("the decoded configuration has no http.middlewares.%s.plugin.%s", middleware, alias)
	return nil
}

// decodeFileProvider decodes a dynamic configuration file as Traefik's file provider does
// (pkg/provider/file/file.go decodeConfiguration). ext is ".yaml" or ".toml".
func decodeFileProvider(content, ext string) (*loaderDynamic, error) {
	conf := &loaderDynamic{HTTP: &loaderHTTP{
		Routers:     map[string]*loaderRouter{},
		Services:    map[string]*loaderService{},
		Middlewares: map[string]*loaderMiddleware{},
	}}
	return conf, file.DecodeContent(content, ext, conf)
}

// decodeLabels decodes container labels as Traefik's docker provider does
// (pkg/provider/docker/config.go → pkg/config/label/label.go DecodeConfiguration).
func decodeLabels(labels map[string]string) (*loaderDynamic, error) {
	conf := &loaderDynamic{HTTP: &loaderHTTP{}}
	return conf, parser.Decode(labels, conf, parser.DefaultRootName, "traefik.http")
}

// loaderPluginLabels spells plugin keys as docker labels of middleware api-auth, alias introspection.
func loaderPluginLabels(keys map[string]string) map[string]string {
	labels := map[string]string{}
	for k, v := range keys {
		labels["traefik.http.middlewares.api-auth.plugin.introspection."+k] = v
	}
	return labels
}

// loaderKeys are plugin keys for endpoint with the README's client credentials, plus extra.
func loaderKeys(endpoint string, extra map[string]string) map[string]string {
	keys := map[string]string{"endpoint": endpoint, "clientId": loaderClientID, "clientSecret": loaderClientSecret}
	for k, v := range extra {
		keys[k] = v
	}
	return keys
}

// decodePluginLabels is the raw plugin map Traefik builds from those labels.
func decodePluginLabels(t testing.TB, keys map[string]string) map[string]interface{} {
	t.Helper()
	conf, err := decodeLabels(loaderPluginLabels(keys))
	if err != nil {
		t.Fatalf("decoding the labels: %v", err)
	}
	return conf.pluginConf(t, "api-auth", "introspection")
}

// decodeCRDMiddleware takes spec.plugin of a Middleware resource as Traefik's kubernetes CRD
// provider does: the API server stores it as JSON (apiextensionv1.JSON), and
// createPluginMiddleware (pkg/provider/kubernetes/crd/kubernetes.go) unmarshals that into
// dynamic.PluginConf, so values keep their JSON types.
func decodeCRDMiddleware(t testing.TB, manifest string) map[string]loaderPluginConf {
	t.Helper()
	var doc interface{}
	if err := yaml.Unmarshal([]byte(manifest), &doc); err != nil {
		t.Fatalf("parsing the Middleware YAML: %v", err)
	}
	asJSON, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("Middleware as JSON: %v", err)
	}
	var resource struct {
		Kind string
		Spec struct {
			Plugin map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(asJSON, &resource); err != nil || resource.Kind != "Middleware" {
		t.Fatalf("not a Middleware resource (kind %q): %v", resource.Kind, err)
	}
	data, err := json.Marshal(resource.Spec.Plugin)
	if err != nil {
		t.Fatalf("spec.plugin as JSON: %v", err)
	}
	plugins := map[string]loaderPluginConf{}
	if err := json.Unmarshal(data, &plugins); err != nil {
		t.Fatalf("spec.plugin: %v", err)
	}
	return plugins
}

// loaderPlugin is the plugin as Traefik holds it: one yaegi interpreter per alias and the
// New and CreateConfig it evaluated (pkg/plugins/builder.go newMiddlewareBuilder).
type loaderPlugin struct {
	interp         *interp.Interpreter
	basePkg        string
	fnNew          reflect.Value
	fnCreateConfig reflect.Value
}

// loadPlugin lays the repository's non-test sources, go.mod and .traefik.yml out as a local
// plugin (<GOPATH>/src/<module>, like ./plugins-local) and interprets them as Traefik's
// newInterpreter and newYaegiMiddlewareBuilder do (pkg/plugins/middlewareyaegi.go). env is
// the interpreter's environment: Traefik passes os.Environ(), piceus passes none.
func loadPlugin(ctx context.Context, t testing.TB, env []string) *loaderPlugin {
	t.Helper()
	manifest := loaderReadManifest(t)
	goPath := t.TempDir()
	dst := filepath.Join(goPath, "src", filepath.FromSlash(loaderModulePath(t)))
	if err := harness.InstallPlugin(loaderRepo, dst); err != nil {
		t.Fatal(err)
	}

	return interpretPlugin(ctx, t, env, goPath, manifest.Import, manifest.BasePkg)
}

// interpretPlugin evaluates the plugin under goPath/src/<importPath> and its New and
// CreateConfig, as Traefik's newInterpreter and newYaegiMiddlewareBuilder do. An empty
// basePkg is the import path's last element, as Traefik derives it.
func interpretPlugin(ctx context.Context, t testing.TB, env []string, goPath, importPath, basePkg string) *loaderPlugin {
	t.Helper()
	i := interp.New(interp.Options{GoPath: goPath, Env: env})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatalf("loading the stdlib symbols: %v", err)
	}
	if _, err := loaderEval(ctx, i, fmt.Sprintf("import %q", importPath)); err != nil {
		t.Fatalf("failed to import plugin code %q: %v", importPath, err)
	}
	p := &loaderPlugin{interp: i, basePkg: basePkg}
	var err error
	if p.basePkg == "" {
		p.basePkg = strings.ReplaceAll(path.Base(importPath), "-", "_")
	}
	if p.fnNew, err = loaderEval(ctx, i, p.basePkg+".New"); err != nil {
		t.Fatalf("failed to eval New: %v", err)
	}
	if p.fnCreateConfig, err = loaderEval(ctx, i, p.basePkg+".CreateConfig"); err != nil {
		t.Fatalf("failed to eval CreateConfig: %v", err)
	}
	return p
}

// loaderEval evaluates src; yaegi may panic instead of returning an error (yaegi #1690).
func loaderEval(ctx context.Context, i *interp.Interpreter, src string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaegi panicked evaluating %q: %v", src, r)
		}
	}()
	return i.EvalWithContext(ctx, src)
}

// New builds one middleware from a raw plugin map as Traefik does for each router:
// a fresh CreateConfig, decoded unless the map is empty (yaegiMiddlewareBuilder.createConfig),
// then New (newHandler).
func (p *loaderPlugin) New(raw map[string]interface{}, next http.Handler) (http.Handler, error) {
	results := p.fnCreateConfig.Call(nil)
	if len(results) != 1 {
		return nil, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(results))
	}
	vConfig := results[0]
	if len(raw) > 0 {
		if err := loaderDecode(vConfig, raw); err != nil {
			return nil, err
		}
	}
	return loaderCallNew(context.Background(), p.fnNew, vConfig, next, "api-auth@file")
}

// loaderDecode is the mapstructure step of Traefik's createConfig and piceus's decodeConfig.
func loaderDecode(vConfig reflect.Value, raw map[string]interface{}) error {
	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           vConfig.Interface(),
	})
	if err != nil {
		return fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := decoder.Decode(raw); err != nil {
		return fmt.Errorf("failed to decode configuration: %w", err)
	}
	return nil
}

// loaderCallNew calls New through reflect as Traefik's newHandler does; a panic becomes an
// error, as in piceus's safeFnCall.
func loaderCallNew(ctx context.Context, fnNew, vConfig reflect.Value, next http.Handler, name string) (h http.Handler, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("New panicked: %v", r)
		}
	}()
	results := fnNew.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), vConfig, reflect.ValueOf(name)})
	if len(results) > 1 && results[1].Interface() != nil {
		err, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", results[1].Interface())
		}
		return nil, err
	}
	handler, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}
	return handler, nil
}

// loaderReadManifest reads .traefik.yml as Traefik's ReadManifest does (yaml.v3).
func loaderReadManifest(t testing.TB) loaderManifest {
	t.Helper()
	var m loaderManifest
	if err := yaml.Unmarshal([]byte(loaderReadFile(t, ".traefik.yml")), &m); err != nil {
		t.Fatalf("decoding .traefik.yml: %v", err)
	}
	return m
}

// loaderModulePath is the module path of the plugin's go.mod.
func loaderModulePath(t testing.TB) string {
	t.Helper()
	for _, line := range strings.Split(loaderReadFile(t, "go.mod"), "\n") {
		if module, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(module), `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

func loaderReadFile(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(loaderRepo, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// loaderTokens are the mock authorization server's answers (RFC 7662 §2.2); any other token is inactive.
var loaderTokens = map[string]string{
	"bare-token":   `{"active":true,"sub":"carol"}`,
	"reader-token": `{"active":true,"scope":"read","sub":"bob"}`,
	"writer-token": `{"active":true,"scope":"read write","sub":"alice",` +
		`"aud":"https://api.example.com","iss":"https://auth.example.com"}`,
}

// loaderAuthServer is an introspection endpoint on 127.0.0.1 that counts its calls.
type loaderAuthServer struct {
	*httptest.Server
	calls      atomic.Int64
	assertions atomic.Int64 // private_key_jwt assertions it verified
	jtis       sync.Map     // their jti: a replayed assertion is refused, as RFC 7523 §3 lets servers do
	signed     atomic.Value // string: the last signed answer it sent
}

// The private_key_jwt client's key and the key the mock signs RFC 9701 answers with, made
// once per test binary: an RSA key takes a while.
var (
	loaderClientKey = sync.OnceValue(func() *rsa.PrivateKey {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return key
	})
	loaderAnswerKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return key
	})
)

const (
	loaderClientKID = "traefik-client"       // the keyId label; the mock picks the client's key by it
	loaderAnswerKID = "auth-example-answers" // the kid of the mock's signed answers
	loaderIssuer    = "https://auth.example.com"
)

// loaderStartAuth starts an RFC 7662 endpoint that requires a POSTed form with a token and
// the client authenticated either with the README's credentials sent with
// client_secret_basic, or with a private_key_jwt assertion signed by loaderClientKey. When
// asked for application/token-introspection+jwt it answers as RFC 9701 says.
//
// The assertion is checked and the answer signed with go-jose, not with the plugin's own
// JOSE code: these are interop checks between two implementations.
func loaderStartAuth(t testing.TB, useTLS bool) *loaderAuthServer {
	t.Helper()
	as := &loaderAuthServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as.calls.Add(1)
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
		answer, ok := loaderTokens[r.PostForm.Get("token")]
		if !ok {
			answer = `{"active":false}`
		}
		if r.Header.Get("Accept") == "application/token-introspection+jwt" {
			signed, err := loaderSignAnswer(answer)
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
// loaderClientID for this endpoint, with nothing else beside it.
func (as *loaderAuthServer) authenticate(r *http.Request) error {
	id, secret, basic := r.BasicAuth()
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" && !r.PostForm.Has("client_assertion_type") {
		if !basic || id != loaderClientID || secret != loaderClientSecret {
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
	if kid := tok.Headers[0].KeyID; kid != loaderClientKID {
		return fmt.Errorf("client_assertion kid %q, want %q", kid, loaderClientKID)
	}
	var claims jwt.Claims
	if err := tok.Claims(&loaderClientKey().PublicKey, &claims); err != nil {
		return fmt.Errorf("client_assertion signature: %w", err)
	}
	// The plugin's default assertionAudience is the endpoint URL, which is as.URL here; the
	// README's example sets the issuer instead, as many servers want.
	expected := jwt.Expected{Issuer: loaderClientID, Subject: loaderClientID, AnyAudience: jwt.Audience{as.URL, loaderIssuer}}
	if err := claims.Validate(expected); err != nil {
		return fmt.Errorf("client_assertion claims %+v: %w", claims, err)
	}
	if claims.Expiry == nil || claims.ID == "" {
		return errors.New("client_assertion without exp or jti")
	}
	if _, replayed := as.jtis.LoadOrStore(claims.ID, true); replayed {
		return fmt.Errorf("client_assertion jti %q replayed", claims.ID)
	}
	as.assertions.Add(1)
	return nil
}

// lastSigned is the last signed answer the mock sent, "" if none.
func (as *loaderAuthServer) lastSigned() string {
	s, _ := as.signed.Load().(string)
	return s
}

// loaderSignAnswer wraps an RFC 7662 answer in an RFC 9701 JWT for loaderClientID, signed
// ES256 by loaderAnswerKey.
func loaderSignAnswer(answer string) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: loaderAnswerKey(), KeyID: loaderAnswerKID}},
		(&jose.SignerOptions{}).WithType("token-introspection+jwt"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(map[string]interface{}{
		"iss":                 loaderIssuer,
		"aud":                 loaderClientID,
		"iat":                 time.Now().Unix(),
		"token_introspection": json.RawMessage(answer),
	})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// loaderWriteFile writes data to a new file named name and returns its path.
func loaderWriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loaderWritePrivateKey writes key as PKCS #8 PEM, the form privateKeyFile takes.
func loaderWritePrivateKey(t testing.TB, name string, key interface{}) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return loaderWriteFile(t, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// loaderWriteCert writes a self-signed client certificate and its key as PEM files.
func loaderWriteCert(t testing.TB) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: loaderClientID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return loaderWriteFile(t, "client.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		loaderWriteFile(t, "client.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

// loaderWriteJWKS writes pub as a JWK Set, as an authorization server's jwks_uri serves it,
// with the kid of the mock's signed answers.
func loaderWriteJWKS(t testing.TB, name string, pub *ecdsa.PublicKey) string {
	t.Helper()
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: pub, KeyID: loaderAnswerKID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return loaderWriteFile(t, name, set)
}

// loaderNext is the backend behind the middleware: it records what reached it.
type loaderNext struct {
	calls  int
	header http.Header
}

func (n *loaderNext) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.calls++
	n.header = r.Header.Clone()
	w.WriteHeader(http.StatusOK)
}

// loaderSend sends GET / with a bearer token through h; "" sends no Authorization header.
func loaderSend(h http.Handler, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// loaderDropNetworkEnv removes, for the test, the variables piceus's dropSensitiveEnvVars
// removes (names holding token, password, username, _url, _host, _port) and the proxy settings.
func loaderDropNetworkEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		lower := strings.ToLower(name)
		for _, part := range []string{"token", "password", "username", "_url", "_host", "_port", "proxy"} {
			if strings.Contains(lower, part) {
				t.Setenv(name, "") // restores the value after the test
				_ = os.Unsetenv(name)
				break
			}
		}
	}
}

// TestCatalogAnalyzer runs the checks the catalog analyzer (piceus pkg/core/scrapper.go
// loadManifestContent, checkModuleFile; yaegi.go yaegiMiddlewareCheck) and Traefik's
// checkLocalPluginManifest make before a plugin is listed or loaded.
func TestCatalogAnalyzer(t *testing.T) {
	content := loaderReadFile(t, ".traefik.yml")
	module := loaderModulePath(t)

	// yaml.v3 for the manifest, then paerser for testData, as loadManifestContent does.
	var m loaderManifest
	if err := yaml.Unmarshal([]byte(content), &m); err != nil {
		t.Fatalf("decoding .traefik.yml: %v", err)
	}
	if len(m.TestData) > 0 {
		var mp loaderManifest
		if err := file.DecodeContent(content, ".yaml", &mp); err != nil {
			t.Fatalf("failed to read testdata from manifest: %v", err)
		}
		m.TestData = mp.TestData
	}

	if m.DisplayName == "" || m.Summary == "" {
		t.Errorf("displayName %q and summary %q must both be set", m.DisplayName, m.Summary)
	}
	if m.Type != "middleware" {
		t.Errorf("type is %q, want middleware", m.Type)
	}
	if !strings.HasPrefix(m.Import, module) {
		t.Errorf("the import %q must be related to the module name %q", m.Import, module)
	}
	if m.TestData == nil {
		t.Error("missing testData")
	}
	// The catalog shows these images from the repository; an unset one is fine.
	for key, image := range map[string]string{"iconPath": m.IconPath, "bannerPath": m.BannerPath} {
		if image == "" {
			continue
		}
		if info, err := os.Stat(filepath.Join(loaderRepo, image)); !filepath.IsLocal(image) || err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s %q is not a file in the repository (%v)", key, image, err)
		}
	}
	for _, forbidden := range []string{"github.com/traefik/yaegi", "github.com/traefik/traefik", "github.com/traefik/mesh", "github.com/containous/"} {
		if strings.Contains(loaderReadFile(t, "go.mod"), forbidden) {
			t.Errorf("go.mod mentions %s: a plugin cannot have a dependence to it", forbidden)
		}
	}

	// yaegiMiddlewareCheck: network-looking variables removed, no interpreter environment,
	// everything within 10 s, New called with a no-op next and the name "test".
	loaderDropNetworkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := loadPlugin(ctx, t, nil)
	vConfig, err := loaderEval(ctx, p.interp, p.basePkg+".CreateConfig()")
	if err != nil {
		t.Fatalf("failed to eval `CreateConfig` function: %v", err)
	}
	if err := loaderDecode(vConfig, m.TestData); err != nil {
		t.Fatal(err)
	}
	if typ := p.fnNew.Type(); typ.NumIn() != 4 || typ.NumOut() != 2 || !typ.In(2).AssignableTo(vConfig.Type()) {
		t.Fatalf("the signature of the function `New` is invalid: %v", typ)
	}
	done := make(chan error, 1)
	go func() {
		_, err := loaderCallNew(ctx, p.fnNew, vConfig, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "test")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("failed to create a new plugin instance from testData: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("the function `New` has failed: %v", ctx.Err())
	}
}

// TestDockerLabels checks that values typed as docker label strings keep their meaning after
// paerser's label parser and Traefik's mapstructure step: lists, maps, durations, booleans.
func TestDockerLabels(t *testing.T) {
	p := loadPlugin(context.Background(), t, os.Environ())
	const scopeChallenge = `Bearer realm="traefik", error="insufficient_scope", scope="read write"`
	const invalidChallenge = `Bearer realm="traefik", error="invalid_token"`

	privateKeyFile := loaderWritePrivateKey(t, "client.pem", loaderClientKey())
	responseKeysFile := loaderWriteJWKS(t, "answers.jwks", &loaderAnswerKey().PublicKey)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The same kid with another key: the signature itself must fail, not the key lookup.
	otherKeysFile := loaderWriteJWKS(t, "other.jwks", &otherKey.PublicKey)

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
				"keyId": loaderClientKID, "cacheTTL": "0s",
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
			as := loaderStartAuth(t, tc.tls) // a new endpoint URL each: no cache shared between rows
			next := &loaderNext{}
			h, err := p.New(decodePluginLabels(t, loaderKeys(as.URL, tc.labels)), next)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			var rec *httptest.ResponseRecorder
			for n := 0; n < tc.requests; n++ {
				rec = loaderSend(h, tc.token)
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
			if got := as.calls.Load(); got != tc.wantCalls {
				t.Errorf("the authorization server got %d calls, want %d", got, tc.wantCalls)
			}
			wantAssertions := int64(0)
			if tc.labels["authMethod"] == "private_key_jwt" {
				wantAssertions = tc.wantCalls
			}
			if got := as.assertions.Load(); got != wantAssertions {
				t.Errorf("the authorization server verified %d client assertions, want %d", got, wantAssertions)
			}
			if tc.wantSigned != "" {
				if got, sent := next.header.Get(tc.wantSigned), as.lastSigned(); sent == "" || got != sent {
					t.Errorf("next received %s %q, want the signed answer the mock sent, %q", tc.wantSigned, got, sent)
				}
			}
		})
	}

	// Traefik runs CreateConfig for each middleware, and mapstructure writes into the default
	// slices and maps it is given: what one instance decodes must not reach the next one.
	t.Run("instances do not share decoded lists and maps", func(t *testing.T) {
		as := loaderStartAuth(t, false)
		strict, err := p.New(decodePluginLabels(t, loaderKeys(as.URL, map[string]string{
			"requiredScopes": "read,write", "forwardHeaders.X-Auth-Subject": "sub",
		})), &loaderNext{})
		if err != nil {
			t.Fatal(err)
		}
		next := &loaderNext{}
		open, err := p.New(decodePluginLabels(t, loaderKeys(as.URL, nil)), next)
		if err != nil {
			t.Fatal(err)
		}
		if got := loaderSend(open, "bare-token").Code; got != http.StatusOK || next.header.Get("X-Auth-Subject") != "" {
			t.Errorf("the plain instance answered %d and set X-Auth-Subject %q, want 200 and none", got, next.header.Get("X-Auth-Subject"))
		}
		if got := loaderSend(strict, "reader-token").Code; got != http.StatusForbidden {
			t.Errorf("the instance with requiredScopes read,write answered %d, want 403", got)
		}
	})
}

// readmeBlocks returns the fenced code blocks under each "###" heading of README.md's
// "## Examples" section.
func readmeBlocks(t *testing.T) map[string][]string {
	t.Helper()
	blocks := map[string][]string{}
	inExamples, heading := false, ""
	var block *strings.Builder
	for _, line := range strings.Split(loaderReadFile(t, "README.md"), "\n") {
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

// loaderFlatten lists a raw plugin map as dotted keys and lists joined by ",", whatever the
// types the provider gave its values, to compare it with the README.
func loaderFlatten(prefix string, raw map[string]interface{}, out map[string]string) map[string]string {
	for k, v := range raw {
		switch v := v.(type) {
		case map[string]interface{}:
			loaderFlatten(prefix+k+".", v, out)
		case loaderPluginConf:
			loaderFlatten(prefix+k+".", v, out)
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
	p := loadPlugin(context.Background(), t, os.Environ())

	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(loaderClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The files the examples mount from Secrets: the mock's keys, and a client certificate.
	certFile, certKeyFile := loaderWriteCert(t)
	mounted := map[string]string{
		"clientSecretFile": secretFile,
		"privateKeyFile":   loaderWritePrivateKey(t, "client.pem", loaderClientKey()),
		"responseKeysFile": loaderWriteJWKS(t, "answers.jwks", &loaderAnswerKey().PublicKey),
		"tlsCertFile":      certFile,
		"tlsKeyFile":       certKeyFile,
	}

	fromFile := func(ext string) func(*testing.T, string) map[string]interface{} {
		return func(t *testing.T, block string) map[string]interface{} {
			conf, err := decodeFileProvider(block, ext)
			if err != nil {
				t.Fatalf("file provider: %v", err)
			}
			return conf.pluginConf(t, "api-auth", "introspection")
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
		conf, err := decodeLabels(labels)
		if err != nil {
			t.Fatalf("docker labels: %v", err)
		}
		return conf.pluginConf(t, "api-auth", "introspection")
	}
	fromCRD := func(t *testing.T, block string) map[string]interface{} {
		raw := decodeCRDMiddleware(t, block)["introspection"]
		if raw == nil {
			t.Fatal("spec.plugin has no introspection")
		}
		return raw
	}

	// Values every example sets; each case adds its own.
	common := map[string]string{
		"endpoint":                      "https://auth.example.com/oauth2/introspect",
		"clientId":                      loaderClientID,
		"authMethod":                    "client_secret_basic",
		"forwardHeaders.X-Auth-Subject": "sub",
		"cacheTTL":                      "60s",
	}
	fileProvider := map[string]string{
		"clientSecret": loaderClientSecret, "requiredScopes": "read", "audiences": "https://api.example.com",
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
			map[string]string{"clientSecret": loaderClientSecret, "requiredScopes": "read,write"}},
		{"Kubernetes (CRD)", "kind: Middleware", fromCRD, map[string]string{
			"clientSecretFile": "/secrets/introspection/client-secret", "requiredScopes": "read", "audiences": "https://api.example.com",
		}},
		{"Without a shared secret (YAML)", "private_key_jwt", fromFile(".yaml"), map[string]string{
			"authMethod": "private_key_jwt", "privateKeyFile": "/secrets/introspection/client-key.pem", "signingAlg": "PS256",
			"keyId": loaderClientKID, "assertionAudience": loaderIssuer, "responseFormat": "jwt",
			"responseKeysFile": "/secrets/introspection/auth-server-keys.json", "issuers": loaderIssuer,
			"forwardIntrospectionJWT": "X-Introspection-JWT",
		}},
		{"Without a shared secret (YAML)", "tls_client_auth", fromFile(".yaml"), map[string]string{
			"authMethod": "tls_client_auth", "tlsCertFile": "/secrets/introspection/client.crt",
			"tlsKeyFile": "/secrets/introspection/client.key", "optional": "true",
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

			got := loaderFlatten("", raw, map[string]string{})
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
			if _, err := p.New(raw, &loaderNext{}); err != nil {
				t.Fatalf("New with the README's configuration: %v", err)
			}
			if _, ok := raw["tlsCertFile"]; ok {
				// The mock does not take client certificates (TestMutualTLS covers them);
				// the example's optional still shows: no token, no call, the next handler.
				next := &loaderNext{}
				h, err := p.New(raw, next)
				if err != nil {
					t.Fatal(err)
				}
				if rec := loaderSend(h, ""); rec.Code != http.StatusOK || next.calls != 1 || next.header.Get("X-Auth-Subject") != "" {
					t.Errorf("no token: got %d, next ran %d times with X-Auth-Subject %q; want 200, once, none",
						rec.Code, next.calls, next.header.Get("X-Auth-Subject"))
				}
				return
			}

			as := loaderStartAuth(t, false)
			raw["endpoint"] = as.URL
			next := &loaderNext{}
			h, err := p.New(raw, next)
			if err != nil {
				t.Fatalf("New with the endpoint at the mock: %v", err)
			}
			rec := loaderSend(h, "writer-token")
			wantAuthorization := "Bearer writer-token"
			if got["forwardAuthorization"] == "false" {
				wantAuthorization = ""
			}
			if rec.Code != http.StatusOK || next.calls != 1 {
				t.Fatalf("a token with every claim the example asks for got %d, next ran %d times", rec.Code, next.calls)
			}
			if _, ok := raw["forwardIntrospectionJWT"]; ok {
				if got := next.header.Get("X-Introspection-JWT"); got == "" || got != as.lastSigned() {
					t.Errorf("next received X-Introspection-JWT %q, want the mock's signed answer", got)
				}
			}
			if s, a := next.header.Get("X-Auth-Subject"), next.header.Get("Authorization"); s != "alice" || a != wantAuthorization {
				t.Errorf("next received X-Auth-Subject %q and Authorization %q, want %q and %q", s, a, "alice", wantAuthorization)
			}
		})
	}
}

// TestConfigMistakes checks that a typo or a bad value in docker labels stops the
// middleware with an error naming the key, from New or from Traefik's decoding step, and
// that no error shows the client secret.
func TestConfigMistakes(t *testing.T) {
	p := loadPlugin(context.Background(), t, os.Environ())
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
		{"unknown authMethod", map[string]string{"authMethod": "client_secret_jwt"}, "", []string{"authMethod", "client_secret_jwt"}},
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
			keys := loaderKeys(endpoint, map[string]string{"clientSecret": secret})
			delete(keys, tc.drop)
			for k, v := range tc.set {
				keys[k] = v
			}
			_, err := p.New(decodePluginLabels(t, keys), &loaderNext{})
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
