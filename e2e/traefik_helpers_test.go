package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// peer returns the path of a peer binary that `make test` built and passed in env.
func peer(t *testing.T, env string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		t.Fatalf("%s is not set: run the end-to-end tests with `make test` (or `make e2e`), which builds the peers", env)
	}
	return bin
}

// startTraefik runs a real Traefik v3.6 with the plugin as a local plugin and the given
// file-provider configuration, until the test ends. Its log is printed if the test fails.
func startTraefik(t *testing.T, dynamic string) *harness.Traefik {
	t.Helper()
	return startTraefikWith(t, dynamic, harness.Options{})
}

// startTraefikWith is startTraefik with options.
func startTraefikWith(t *testing.T, dynamic string, opts harness.Options) *harness.Traefik {
	t.Helper()
	tr, err := harness.Start(peer(t, "TRAEFIK_BIN"), t.TempDir(), dynamic, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Stop()
		if t.Failed() {
			t.Logf("traefik log:\n%s", tr.Logs())
		}
	})
	return tr
}

// startRoutes starts the demo backend and a Traefik whose routes (host: the plugin's
// configuration) reach it, and returns once every host is routed.
func startRoutes(t *testing.T, routes map[string]string) *harness.Traefik {
	t.Helper()
	tr := startTraefik(t, harness.Routes(serve(t, harness.Backend()), routes))
	for host := range routes {
		waitRouted(t, tr, host)
	}
	return tr
}

// serve runs h on 127.0.0.1 until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// send makes a request to Traefik for host and path, with the bearer token if one is given.
func send(t *testing.T, tr *harness.Traefik, host, path, token string) harness.Answer {
	t.Helper()
	a, err := tr.Send(host, path, token)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitRouted waits until Traefik routes requests for host.
func waitRouted(t *testing.T, tr *harness.Traefik, host string) {
	t.Helper()
	if err := tr.WaitRouted(host); err != nil {
		t.Fatal(err)
	}
}

// assertReached checks that the request got the backend's own 404, with the demo subject
// forwarded and the token removed.
func assertReached(t *testing.T, a harness.Answer, subject string) {
	t.Helper()
	assertAdmitted(t, "request", a, map[string]string{"X-Auth-Subject": subject, "Authorization": ""})
}

// assertAdmitted checks that the request got the backend's own 404 and that the backend
// received each header with the value given ("" for none).
func assertAdmitted(t *testing.T, what string, a harness.Answer, headers map[string]string) {
	t.Helper()
	if a.Status != http.StatusNotFound || a.Seen == nil {
		t.Errorf("%s: got %d (backend reached: %v), want the backend's 404", what, a.Status, a.Seen != nil)
		return
	}
	for name, want := range headers {
		if got := a.Seen.Headers.Get(name); got != want {
			t.Errorf("%s: backend got %s %q, want %q", what, name, got, want)
		}
	}
}

// assertRefused checks that Traefik answered status itself, with the challenge.
func assertRefused(t *testing.T, a harness.Answer, status int, challenge string) {
	t.Helper()
	if a.Status != status || a.Seen != nil {
		t.Fatalf("got %d (backend reached: %v), want %d from the middleware", a.Status, a.Seen != nil, status)
	}
	if a.Challenge != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", a.Challenge, challenge)
	}
}

// assertLogHoldsNo fails if a line of Traefik's log contains any of the secrets. Traefik's
// own dump of the dynamic configuration at DEBUG level ("Configuration received") is left
// out: it prints plugin options as given, which is why the README recommends
// clientSecretFile.
func assertLogHoldsNo(t *testing.T, tr *harness.Traefik, secrets ...string) {
	t.Helper()
	for _, line := range strings.Split(tr.Logs(), "\n") {
		if strings.Contains(line, "Configuration received") {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("traefik log line contains %q: %s", s, line)
			}
		}
	}
}

// goRun runs a command of the e2e module with the Traefik the tests use, and returns its
// output; the test fails if it fails.
func goRun(t *testing.T, pkg string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", pkg}, args...)...)
	cmd.Env = append(os.Environ(), "TRAEFIK_BIN="+peer(t, "TRAEFIK_BIN"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run %s %s: %v\n%s", pkg, strings.Join(args, " "), err, out)
	}
	return out
}
