package loader

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/traefik/paerser/file"
	"gopkg.in/yaml.v3"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// dropNetworkEnv removes, for the test, the variables piceus's dropSensitiveEnvVars
// removes (names holding token, password, username, _url, _host, _port) and the proxy settings.
func dropNetworkEnv(t *testing.T) {
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
	content := ReadFile(t, ".traefik.yml")
	module := harness.Module // the module of go.mod, as harness.RepoRoot requires

	// yaml.v3 for the manifest, then paerser for testData, as loadManifestContent does.
	var m Manifest
	if err := yaml.Unmarshal([]byte(content), &m); err != nil {
		t.Fatalf("decoding .traefik.yml: %v", err)
	}
	if len(m.TestData) > 0 {
		var mp Manifest
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
		if info, err := os.Stat(repoPath(t, image)); !filepath.IsLocal(image) || err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s %q is not a file in the repository (%v)", key, image, err)
		}
	}
	for _, forbidden := range []string{"github.com/traefik/yaegi", "github.com/traefik/traefik", "github.com/traefik/mesh", "github.com/containous/"} {
		if strings.Contains(ReadFile(t, "go.mod"), forbidden) {
			t.Errorf("go.mod mentions %s: a plugin cannot have a dependence to it", forbidden)
		}
	}

	// yaegiMiddlewareCheck: network-looking variables removed, no interpreter environment,
	// everything within 10 s, New called with a no-op next and the name "test".
	dropNetworkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := Load(ctx, t, nil)
	vConfig, err := eval(ctx, p.interp, p.basePkg+".CreateConfig()")
	if err != nil {
		t.Fatalf("failed to eval `CreateConfig` function: %v", err)
	}
	if err := decode(vConfig, m.TestData); err != nil {
		t.Fatal(err)
	}
	if typ := p.fnNew.Type(); typ.NumIn() != 4 || typ.NumOut() != 2 || !typ.In(2).AssignableTo(vConfig.Type()) {
		t.Fatalf("the signature of the function `New` is invalid: %v", typ)
	}
	done := make(chan error, 1)
	go func() {
		_, err := callNew(ctx, p.fnNew, vConfig, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "test")
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
