package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoRoot is the plugin's repository root: the nearest directory at or above the working
// directory whose go.mod declares Module. Each test runs in its own package's directory and
// go run wherever it is started, so no fixed relative path serves them all.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if gomod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(string(gomod)) == Module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no directory at or above the working directory holds the go.mod of %s", Module)
		}
		dir = parent
	}
}

// modulePath is the module path a go.mod declares, "" if it has no module line.
func modulePath(gomod string) string {
	for _, line := range strings.Split(gomod, "\n") {
		if module, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(module), `"`)
		}
	}
	return ""
}
