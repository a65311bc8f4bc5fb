// Package loader is Traefik v3.6.12's plugin loader replicated without importing Traefik:
// the plugin interpreted by yaegi as a local plugin, its configuration decoded from each
// provider's form (file, docker labels, kubernetes CRD) with Traefik's paerser and
// mapstructure settings, and New called as Traefik calls it. Beside it: ExampleServer,
// the README examples' mock authorization server (RFC 7662, RFC 9701 answers,
// private_key_jwt clients) built on go-jose, and the files its keys live in. Each step names the function of Traefik or of
// the catalog analyzer (traefik/piceus) it mirrors. No network beyond 127.0.0.1 and no
// Traefik binary: `go test ./loader/` runs anywhere.
package loader

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"gopkg.in/yaml.v3"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// Plugin is the plugin as Traefik holds it: one yaegi interpreter per alias and the
// New and CreateConfig it evaluated (pkg/plugins/builder.go newMiddlewareBuilder).
type Plugin struct {
	interp         *interp.Interpreter
	basePkg        string
	fnNew          reflect.Value
	fnCreateConfig reflect.Value
}

// Load lays the repository's non-test sources, go.mod and .traefik.yml out as a local
// plugin (<GOPATH>/src/<module>, like ./plugins-local) and interprets them as Traefik's
// newInterpreter and newYaegiMiddlewareBuilder do (pkg/plugins/middlewareyaegi.go). env is
// the interpreter's environment: Traefik passes os.Environ(), piceus passes none.
func Load(ctx context.Context, t testing.TB, env []string) *Plugin {
	t.Helper()
	return LoadWith(ctx, t, env, nil)
}

// Interpret evaluates the plugin under goPath/src/<importPath> and its New and
// CreateConfig, as Traefik's newInterpreter and newYaegiMiddlewareBuilder do. An empty
// basePkg is the import path's last element, as Traefik derives it.
func Interpret(ctx context.Context, t testing.TB, env []string, goPath, importPath, basePkg string) *Plugin {
	t.Helper()
	return InterpretWith(ctx, t, env, goPath, importPath, basePkg, nil)
}

// LoadWith is Load with the interpreter's stderr: where the plugin's log package writes.
// yaegi gives interpreted code a log of its own on its Options.Stderr (interp/use.go), which
// Traefik makes its error-level log; log.SetOutput of the compiled log does not reach it.
// nil is os.Stderr.
func LoadWith(ctx context.Context, t testing.TB, env []string, stderr io.Writer) *Plugin {
	t.Helper()
	manifest := ReadManifest(t)
	goPath := t.TempDir()
	dst := filepath.Join(goPath, "src", filepath.FromSlash(harness.Module))
	if err := harness.InstallPlugin(repoPath(t, "."), dst); err != nil {
		t.Fatal(err)
	}
	return InterpretWith(ctx, t, env, goPath, manifest.Import, manifest.BasePkg, stderr)
}

// InterpretWith is Interpret with the interpreter's stderr (see LoadWith).
func InterpretWith(ctx context.Context, t testing.TB, env []string, goPath, importPath, basePkg string, stderr io.Writer) *Plugin {
	t.Helper()
	i := interp.New(interp.Options{GoPath: goPath, Env: env, Stderr: stderr})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatalf("loading the stdlib symbols: %v", err)
	}
	if _, err := eval(ctx, i, fmt.Sprintf("import %q", importPath)); err != nil {
		t.Fatalf("failed to import plugin code %q: %v", importPath, err)
	}
	p := &Plugin{interp: i, basePkg: basePkg}
	var err error
	if p.basePkg == "" {
		p.basePkg = strings.ReplaceAll(path.Base(importPath), "-", "_")
	}
	if p.fnNew, err = eval(ctx, i, p.basePkg+".New"); err != nil {
		t.Fatalf("failed to eval New: %v", err)
	}
	if p.fnCreateConfig, err = eval(ctx, i, p.basePkg+".CreateConfig"); err != nil {
		t.Fatalf("failed to eval CreateConfig: %v", err)
	}
	return p
}

// eval evaluates src; yaegi may panic instead of returning an error (yaegi #1690).
func eval(ctx context.Context, i *interp.Interpreter, src string) (v reflect.Value, err error) {
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
func (p *Plugin) New(raw map[string]interface{}, next http.Handler) (http.Handler, error) {
	results := p.fnCreateConfig.Call(nil)
	if len(results) != 1 {
		return nil, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(results))
	}
	vConfig := results[0]
	if len(raw) > 0 {
		if err := decode(vConfig, raw); err != nil {
			return nil, err
		}
	}
	return callNew(context.Background(), p.fnNew, vConfig, next, "api-auth@file")
}

// Config is the configuration New would get from raw: a fresh CreateConfig, decoded as
// Traefik decodes it (a pointer to the interpreted Config struct).
func (p *Plugin) Config(raw map[string]interface{}) (reflect.Value, error) {
	vConfig := p.fnCreateConfig.Call(nil)[0]
	if len(raw) > 0 {
		if err := decode(vConfig, raw); err != nil {
			return reflect.Value{}, err
		}
	}
	return vConfig, nil
}

// DecodeConfig decodes raw into config (a pointer to a Config, compiled or interpreted) as
// Traefik decodes a plugin's configuration.
func DecodeConfig(config interface{}, raw map[string]interface{}) error {
	return decode(reflect.ValueOf(config), raw)
}

// decode is the mapstructure step of Traefik's createConfig and piceus's decodeConfig.
func decode(vConfig reflect.Value, raw map[string]interface{}) error {
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

// callNew calls New through reflect as Traefik's newHandler does; a panic becomes an
// error, as in piceus's safeFnCall.
func callNew(ctx context.Context, fnNew, vConfig reflect.Value, next http.Handler, name string) (h http.Handler, err error) {
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

// Manifest holds the .traefik.yml fields read by Traefik (pkg/plugins/types.go Manifest)
// and by piceus (pkg/core/types.go Manifest, which adds iconPath and bannerPath).
type Manifest struct {
	DisplayName string                 `json:"displayName,omitempty" toml:"displayName,omitempty" yaml:"displayName,omitempty"`
	Type        string                 `json:"type,omitempty" toml:"type,omitempty" yaml:"type,omitempty"`
	Import      string                 `json:"import,omitempty" toml:"import,omitempty" yaml:"import,omitempty"`
	BasePkg     string                 `json:"basePkg,omitempty" toml:"basePkg,omitempty" yaml:"basePkg,omitempty"`
	Summary     string                 `json:"summary,omitempty" toml:"summary,omitempty" yaml:"summary,omitempty"`
	IconPath    string                 `json:"iconPath,omitempty" toml:"iconPath,omitempty" yaml:"iconPath,omitempty"`
	BannerPath  string                 `json:"bannerPath,omitempty" toml:"bannerPath,omitempty" yaml:"bannerPath,omitempty"`
	TestData    map[string]interface{} `json:"testData,omitempty" toml:"testData,omitempty" yaml:"testData,omitempty"`
}

// ReadManifest reads .traefik.yml as Traefik's ReadManifest does (yaml.v3).
func ReadManifest(t testing.TB) Manifest {
	t.Helper()
	var m Manifest
	if err := yaml.Unmarshal([]byte(ReadFile(t, ".traefik.yml")), &m); err != nil {
		t.Fatalf("decoding .traefik.yml: %v", err)
	}
	return m
}

// ReadFile returns the content of the file name in the plugin's repository, name being a
// path relative to the repository's root (harness.RepoRoot); a file it cannot read fails t.
func ReadFile(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// repoPath is name's path in the plugin's repository (harness.RepoRoot).
func repoPath(t testing.TB, name string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, name)
}
