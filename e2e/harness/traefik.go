// Package harness runs the plugin the way users do: inside a real Traefik binary, loaded
// as a local plugin, with every process on 127.0.0.1 and ports picked free at run time.
// The end-to-end tests and `make demo` share it.
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Module is the plugin's module path; Alias is the name the static configuration gives it.
const (
	Module = "github.com/tokengate/traefik-oauth2-introspection"
	Alias  = "introspection"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Traefik is a running Traefik process with its own working directory.
type Traefik struct {
	Dir  string // working directory: static config, dynamic config, plugins-local, log
	URL  string // the web entry point, http://127.0.0.1:port
	Ping string // Traefik's own entry point, where /ping answers
	// TLSURL is the websecure entry point, https://127.0.0.1:port, with Options.TLS; "" without.
	TLSURL string

	tlsDynamic string // the dynamic configuration's tls section, with Options.TLS
	cmd        *exec.Cmd
	done       chan error
}

// LocalPlugin is a plugin Traefik loads from plugins-local besides this one: its source
// files by name, go.mod and .traefik.yml included.
type LocalPlugin struct {
	Alias  string
	Module string
	Files  map[string]string
}

// SourcePlugin is the local plugin alias whose module is the Go files of dir (its tests
// left out), with a go.mod and a .traefik.yml made for it. The benchmark's floors are such
// plugins: github.com/tokengate/<alias>, package <alias>.
func SourcePlugin(alias, dir string) (LocalPlugin, error) {
	module := "github.com/tokengate/" + alias
	files := map[string]string{
		"go.mod":       "module " + module + "\n\ngo 1.22\n",
		".traefik.yml": "displayName: " + alias + "\ntype: middleware\nimport: " + module + "\nsummary: A benchmark floor.\ntestData: {}\n",
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return LocalPlugin{}, err
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return LocalPlugin{}, err
		}
		files[filepath.Base(name)] = string(b)
	}
	if len(files) == 2 {
		return LocalPlugin{}, fmt.Errorf("%s holds no Go file", dir)
	}
	return LocalPlugin{Alias: alias, Module: module, Files: files}, nil
}

// Install writes the plugin's files under goPath/src/<module>, where Traefik's plugins-local
// and yaegi's GoPath look for them.
func (p LocalPlugin) Install(goPath string) error {
	return writeFiles(filepath.Join(goPath, "src", p.Module), p.Files)
}

// Options says how to run Traefik beyond the plugin and the dynamic configuration.
type Options struct {
	Plugins []LocalPlugin  // more local plugins, such as the benchmark's no-op one
	Quiet   bool           // ERROR log level and no access log, as under load
	CPUs    string         // taskset's CPU list to pin Traefik to; "" leaves it unpinned
	TLS     *EntryPointTLS // a websecure entry point besides web, for routes with Route.TLS
	// Web is the web entry point's 127.0.0.1 address, for a test that must name Traefik's URL
	// before Traefik starts (in a peer's configuration); "" picks a free one.
	Web string
}

// EntryPointTLS is how the websecure entry point terminates TLS: the certificate it serves
// to every client (the default store's) and the clientAuth of its TLS options (the default
// ones, which every TLS router uses). A client certificate it asks for and gets is what a
// middleware finds in the request's TLS.PeerCertificates.
type EntryPointTLS struct {
	CertFile, KeyFile string
	// ClientAuthType is Traefik's clientAuth.clientAuthType: NoClientCert, RequestClientCert,
	// RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert (the last
	// two need ClientCAFile).
	ClientAuthType string
	ClientCAFile   string // clientAuth.caFiles: the CA client certificates must chain to; "" for none
}

// dynamic is the tls section of the file provider's configuration for e.
func (e *EntryPointTLS) dynamic() string {
	s := fmt.Sprintf("tls:\n  stores:\n    default:\n      defaultCertificate:\n        certFile: %q\n        keyFile: %q\n"+
		"  options:\n    default:\n      clientAuth:\n        clientAuthType: %s\n", e.CertFile, e.KeyFile, e.ClientAuthType)
	if e.ClientCAFile != "" {
		s += fmt.Sprintf("        caFiles: [%q]\n", e.ClientCAFile)
	}
	return s
}

const staticConfig = `global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: %s
  noColor: true
%sentryPoints:
  web:
    address: %q
  traefik:
    address: %q
%sping: {}
providers:
  file:
    filename: dynamic.yml
    watch: true
experimental:
  localPlugins:
%s`

// StartTraefik installs the plugin from RepoRoot as a local plugin in a new directory under
// dir, writes the static configuration and the given dynamic configuration (file provider,
// YAML), starts bin there and waits until Traefik answers its ping. Stop it with Stop.
func StartTraefik(bin, dir, dynamic string) (*Traefik, error) {
	return Start(bin, dir, dynamic, Options{})
}

// Start is StartTraefik with options.
func Start(bin, dir, dynamic string, opts Options) (*Traefik, error) {
	repoRoot, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	web := opts.Web
	if web == "" {
		if web, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	ping, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	t := &Traefik{Dir: dir, URL: "http://" + web, Ping: "http://" + ping, done: make(chan error, 1)}
	websecure := ""
	if opts.TLS != nil {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		t.TLSURL, t.tlsDynamic = "https://"+addr, opts.TLS.dynamic()
		websecure = fmt.Sprintf("  %s:\n    address: %q\n", WebSecure, addr)
	}
	if err := InstallPlugin(repoRoot, filepath.Join(dir, "plugins-local", "src", Module)); err != nil {
		return nil, err
	}
	level, accessLog := "DEBUG", "accessLog: {}\n"
	if opts.Quiet {
		level, accessLog = "ERROR", ""
	}
	plugins := fmt.Sprintf("    %s:\n      moduleName: %s\n", Alias, Module)
	for _, p := range opts.Plugins {
		if err := p.Install(filepath.Join(dir, "plugins-local")); err != nil {
			return nil, err
		}
		plugins += fmt.Sprintf("    %s:\n      moduleName: %s\n", p.Alias, p.Module)
	}
	static := fmt.Sprintf(staticConfig, level, accessLog, web, ping, websecure, plugins)
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o644); err != nil {
		return nil, err
	}
	if err := t.SetDynamic(dynamic); err != nil {
		return nil, err
	}
	logFile, err := os.Create(t.LogPath())
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	t.cmd = exec.Command(bin, "--configFile=traefik.yml")
	if opts.CPUs != "" {
		// taskset execs Traefik in its own place, so the pid stays Traefik's.
		t.cmd = exec.Command("taskset", "-c", opts.CPUs, bin, "--configFile=traefik.yml")
	}
	t.cmd.Dir = dir
	t.cmd.Stdout = logFile
	t.cmd.Stderr = logFile
	// Pdeathsig: Traefik dies with us even when the test binary is killed by -timeout.
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := t.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { t.done <- t.cmd.Wait() }()

	if err := t.waitFor(func() bool { return get(t.Ping+"/ping") == http.StatusOK }); err != nil {
		t.Stop()
		return nil, fmt.Errorf("traefik did not start: %w\n%s", err, t.Logs())
	}
	return t, nil
}

// SetDynamic replaces the file provider's configuration, with Options.TLS's tls section
// after it. It writes a new file and renames it over the old one, so Traefik's watcher
// never reads half a file.
func (t *Traefik) SetDynamic(dynamic string) error {
	tmp := filepath.Join(t.Dir, ".dynamic.yml.tmp")
	if err := os.WriteFile(tmp, []byte(dynamic+t.tlsDynamic), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(t.Dir, "dynamic.yml"))
}

// WaitRouted waits until a request for host gets past Traefik's router table, that is until
// Traefik no longer answers with its own 404 because no router matches.
func (t *Traefik) WaitRouted(host string) error {
	err := t.waitFor(func() bool {
		a, err := t.Send(host, "/", "")
		return err == nil && (a.Status != http.StatusNotFound || a.Seen != nil)
	})
	if err != nil {
		return fmt.Errorf("no router for %s: %w", host, err)
	}
	return nil
}

// Answer is what a client of Traefik sees.
type Answer struct {
	Status     int
	Challenge  string   // the first WWW-Authenticate
	Challenges []string // every WWW-Authenticate line, in order
	Header     http.Header
	Seen       *Seen // what the demo backend received; nil if the request never reached it
}

// Send makes a request to the web entry point for host and path, with the bearer token if
// one is given.
func (t *Traefik) Send(host, path, token string) (Answer, error) {
	req, err := http.NewRequest(http.MethodGet, t.URL+path, nil)
	if err != nil {
		return Answer{}, err
	}
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return Do(req)
}

// Do makes req and reads what the client sees, with what the demo backend received.
func Do(req *http.Request) (Answer, error) {
	return DoWith(http.DefaultClient, req)
}

// DoWith is Do with client.
func DoWith(client *http.Client, req *http.Request) (Answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode, Challenge: resp.Header.Get("WWW-Authenticate"),
		Challenges: resp.Header.Values("WWW-Authenticate"), Header: resp.Header}
	if resp.Header.Get(BackendHeader) != "" {
		a.Seen = &Seen{}
		if err := json.Unmarshal(body, a.Seen); err != nil {
			return Answer{}, fmt.Errorf("backend answer %q: %v", body, err)
		}
	}
	return a, nil
}

// WebSecure is the name of the TLS entry point that Options.TLS adds.
const WebSecure = "websecure"

// HostURL is the URL of host on the web entry point, as a client that resolves host to
// Traefik addresses it: http://host:port.
func (t *Traefik) HostURL(host string) string {
	return "http://" + net.JoinHostPort(host, port(t.URL))
}

// TLSHostURL is the URL of host on the websecure entry point: https://host:port.
func (t *Traefik) TLSHostURL(host string) string {
	return "https://" + net.JoinHostPort(host, port(t.TLSURL))
}

// Client is an HTTP client that reaches Traefik for every host name, as a resolver that
// maps them all to 127.0.0.1 would: the URL, and so the Host header and the TLS server
// name, stay those the client addresses. Over TLS it trusts roots and presents cert (none
// if nil) whatever CAs Traefik names. It keeps no connection for a later client: close it
// with CloseIdleConnections.
func Client(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	var dialer net.Dialer
	tlsConfig := &tls.Config{RootCAs: roots}
	if cert != nil {
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", p))
		},
		TLSClientConfig: tlsConfig,
	}}
}

// port is the port of a URL http(s)://host:port.
func port(rawURL string) string {
	i := strings.LastIndex(rawURL, ":")
	return rawURL[i+1:]
}

// waitFor polls ready until it holds, Traefik exits, or 60 s pass.
func (t *Traefik) waitFor(ready func() bool) error {
	return WaitUntil(60*time.Second, 50*time.Millisecond, func() (bool, error) {
		select {
		case err := <-t.done:
			t.done <- err
			return false, fmt.Errorf("traefik exited: %v", err)
		default:
		}
		return ready(), nil
	})
}

// Pid is Traefik's process id.
func (t *Traefik) Pid() int { return t.cmd.Process.Pid }

// LogPath is where Traefik's output goes.
func (t *Traefik) LogPath() string { return filepath.Join(t.Dir, "traefik.log") }

// Logs returns what Traefik has printed so far.
func (t *Traefik) Logs() string {
	b, _ := os.ReadFile(t.LogPath())
	return string(b)
}

// Stop ends Traefik and waits for it.
func (t *Traefik) Stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.done
	}
	t.cmd = nil
}

// InstallPlugin copies what a user copies for a local plugin: the non-test Go sources,
// go.mod and .traefik.yml.
func InstallPlugin(repoRoot, dst string) error {
	entries, err := os.ReadDir(repoRoot)
	if err != nil {
		return err
	}
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		wanted := name == "go.mod" || name == ".traefik.yml" ||
			(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"))
		if e.IsDir() || !wanted {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			return err
		}
		files[name] = string(b)
	}
	return writeFiles(dst, files)
}

func writeFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
