// Command demo runs the seed scenario for a person to watch and try by hand: a real Traefik
// with the plugin as a local plugin, the demo introspection server and a backend, all on
// 127.0.0.1 with ports picked at run time. `make demo` builds Traefik and runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

const token = "demo-token"

func main() {
	check := flag.Bool("check", false, "exit after the requests, with status 1 if an answer is not the expected one")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	bin := os.Getenv("TRAEFIK_BIN")
	if bin == "" {
		return errors.New("TRAEFIK_BIN is not set: start the demo with `make demo`")
	}
	as := httptest.NewServer(harness.NewDemoAS())
	defer as.Close()
	backend := httptest.NewServer(harness.Backend())
	defer backend.Close()
	dir, err := os.MkdirTemp("", "tokengate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	tr, err := harness.StartTraefik(bin, dir, harness.DemoDynamic(as.URL, backend.URL))
	if err != nil {
		return err
	}
	defer tr.Stop()
	if err := tr.WaitRouted(harness.GoodHost); err != nil {
		return err
	}
	u, err := url.Parse(tr.URL)
	if err != nil {
		return err
	}

	fmt.Printf(`Traefik is running the plugin on %s (log: %s).
Demo introspection server %s, client %q with secret %q:
  /oauth2-introspect says every token is active (sub %q, scope "read"),
  /bad-oauth2-introspect says every token is inactive.
Backend %s has no pages: whatever reaches it gets its 404, with what it received.
Routes: %s checks tokens at /bad-oauth2-introspect, %s at /oauth2-introspect.

`, tr.URL, tr.LogPath(), as.URL, harness.DemoClientID, harness.DemoClientSecret,
		harness.DemoSubject, backend.URL, harness.BadHost, harness.GoodHost)

	wrong := 0
	for _, r := range []struct {
		host, token string
		want        int
		reached     bool
	}{
		{harness.BadHost, token, http.StatusUnauthorized, false},
		{harness.GoodHost, token, http.StatusNotFound, true},
		{harness.GoodHost, "", http.StatusUnauthorized, false},
	} {
		cmd := fmt.Sprintf("curl -i http://%s:%s/anything", r.host, u.Port())
		if r.token != "" {
			cmd += fmt.Sprintf(" -H 'Authorization: Bearer %s'", r.token)
		}
		fmt.Println("$ " + cmd)
		a, err := tr.Send(r.host, "/anything", r.token)
		if err != nil {
			return err
		}
		fmt.Println("  " + describe(a))
		if a.Status != r.want || (a.Seen != nil) != r.reached {
			wrong++
			fmt.Printf("  UNEXPECTED: wanted %d %s\n", r.want, map[bool]string{true: "from the backend", false: "from the middleware"}[r.reached])
		}
	}
	if check {
		if wrong > 0 {
			return fmt.Errorf("%d unexpected answers; Traefik's log:\n%s", wrong, tr.Logs())
		}
		return nil
	}

	fmt.Println("\nTry the commands above by hand. Ctrl-C stops Traefik and the demo servers.")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	fmt.Println("\nstopping")
	return nil
}

// describe says who answered and what mattered in the answer.
func describe(a harness.Answer) string {
	status := fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
	if a.Seen == nil {
		if a.Challenge == "" {
			return status + " from the middleware"
		}
		return fmt.Sprintf("%s from the middleware, WWW-Authenticate: %s", status, a.Challenge)
	}
	auth := "no Authorization header"
	if a.Seen.Headers.Get("Authorization") != "" {
		auth = "the Authorization header"
	}
	return fmt.Sprintf("%s from the backend, which received X-Auth-Subject: %q and %s",
		status, a.Seen.Headers.Get("X-Auth-Subject"), auth)
}
