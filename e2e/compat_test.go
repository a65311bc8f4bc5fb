package e2e_test

import (
	"regexp"
	"strings"
	"testing"
)

// The README's compatibility line names the versions `make test` runs: those pinned in the
// Makefile (the peers it builds) and in this module's go.mod (yaegi, zitadel/oidc).
func TestCompatibilityLine(t *testing.T) {
	readme := loaderReadFile(t, "README.md")
	i := strings.Index(readme, "## Compatibility")
	if i < 0 {
		t.Fatal("README.md has no Compatibility section")
	}
	line := readme[i:]
	pins := map[string]string{
		"Traefik":      pinned(t, "Makefile", `(?m)^TRAEFIK_VERSION\s*=\s*(\S+)`),
		"Ory Hydra":    pinned(t, "Makefile", `(?m)^HYDRA_VERSION\s*=\s*(\S+)`),
		"yaegi":        pinned(t, "e2e/go.mod", `github\.com/traefik/yaegi (\S+)`),
		"zitadel/oidc": pinned(t, "e2e/go.mod", `github\.com/zitadel/oidc/v3 (\S+)`),
	}
	for name, version := range pins {
		if !strings.Contains(line, name+" "+version) {
			t.Errorf("README's compatibility line does not say %q", name+" "+version)
		}
	}
}

func pinned(t *testing.T, file, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(loaderReadFile(t, file))
	if m == nil {
		t.Fatalf("%s: no match for %s", file, pattern)
	}
	return m[1]
}
