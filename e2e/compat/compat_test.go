// Package compat checks what README.md says of the project against the repository: the
// versions its compatibility line names, and the tests its comparison table names. It needs
// no peer binary.
package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
	"github.com/tokengate/traefik-oauth2-introspection/e2e/loader"
)

// The README's compatibility line names the versions `make test` runs: those pinned in the
// Makefile (the peers it builds), in this module's go.mod (yaegi, zitadel/oidc) and in
// e2e/oidc-provider/package.json (node oidc-provider), and the Node.js it runs on.
func TestCompatibilityLine(t *testing.T) {
	readme := loader.ReadFile(t, "README.md")
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
		// An exact version: package.json allows no range for it.
		"oidc-provider": pinned(t, "e2e/oidc-provider/package.json", `"oidc-provider":\s*"(\d+\.\d+\.\d+)"`),
	}
	for name, version := range pins {
		if !strings.Contains(line, name+" "+version) {
			t.Errorf("README's compatibility line does not say %q", name+" "+version)
		}
	}
	// oidc-provider runs on the machine's node, which no file pins: the line says which.
	if !regexp.MustCompile(`oidc-provider \S+ on Node\.js \d+`).MatchString(line) {
		t.Errorf("README's compatibility line does not say which Node.js runs oidc-provider (\"oidc-provider <version> on Node.js <major>\")")
	}
}

func pinned(t *testing.T, file, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(loader.ReadFile(t, file))
	if m == nil {
		t.Fatalf("%s: no match for %s", file, pattern)
	}
	return m[1]
}

// Each row of the README's comparison names the tests that hold the plugin to its cell;
// a renamed or deleted test must not leave a row that nothing backs.
func TestComparisonRows(t *testing.T) {
	readme := loader.ReadFile(t, "README.md")
	start := strings.Index(readme, "## Compared with")
	if start < 0 {
		t.Fatal(`README.md has no "Compared with" section`)
	}
	section := readme[start:]
	section = section[:strings.Index(section[1:], "\n## ")+1]

	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var sources strings.Builder
	for _, pattern := range []string{"*_test.go", "e2e/*_test.go", "e2e/*/*_test.go"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sources.Write(data)
		}
	}
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 8 || cells[0] == "capability" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows++
		tests := strings.Split(cells[7], ", ")
		for _, name := range tests {
			if !regexp.MustCompile(`^Test\w+$`).MatchString(name) || !strings.Contains(sources.String(), "func "+name+"(t *testing.T)") {
				t.Errorf("row %q names %q, which is no test here", cells[0], name)
			}
		}
	}
	if rows < 10 {
		t.Errorf("found %d rows in the comparison table, want the whole table", rows)
	}
}
