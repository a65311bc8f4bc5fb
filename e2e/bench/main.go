// Command bench measures what the plugin costs per request inside a real Traefik, beside
// what users would run instead, and prints a Markdown table: `make bench`. All rows go
// through one Traefik process to one backend; wrk drives the load in interleaved rounds
// (A B C D E, A B C D E, ...), and each figure is the median over the rounds, as a ratio to
// the baseline of the same round, since absolute numbers drift on a shared machine.
//
// With -smoke it checks only what can be counted: every row answers as it should, a herd
// of requests for one new token makes one introspection call. `make test` runs that; the
// timings stay out of tests.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

type options struct {
	smoke       bool
	rounds      int
	duration    time.Duration
	connections int
	flood       int64
}

func main() {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "check the rows and the herd counts only, without wrk and without timings")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds per row")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one row's run in a round")
	flag.IntVar(&o.connections, "connections", 64, "wrk's open connections")
	flag.Int64Var(&o.flood, "flood", 200000, "requests with random tokens in the flood, then as many again")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// A row of the table: one router and its middleware, all to the same backend.
type row struct {
	name       string
	host       string // the router's Host rule
	middleware string // the middleware's dynamic configuration, "%s" for the endpoint's URL; "" for none
	unique     bool   // a new token per request: no cache or shared call may answer for another
	spoof      bool   // every request carries a forged X_Auth_Subject
	calls      int    // introspection calls checkRows's 3 requests make
	subject    string // the X-Auth-Subject the backend must get, "" for none
	targets    []target
	// dpop: the token under the DPoP scheme, each request with a new proof by the bench's key
	// (dpop.lua); refusesReplay: checkRows sends its last proof again, which must be refused
	// without a call.
	dpop, refusesReplay bool
	// pool: the requests cycle through this many tokens (token.lua), the same in every
	// round, so that only the warm-up makes calls.
	pool int
}

// A target is what a row's throughput should be at least, as a ratio to another row's.
type target struct {
	what    string  // as printed
	against string  // the other row's host
	atLeast float64 // a miss is a finding to report, not a failure
}

// pluginRow is the plugin alias's middleware at the endpoint's path, with extra options.
func pluginRow(alias, path, extra string) string {
	return harness.PluginMiddleware(alias, fmt.Sprintf("endpoint: %%s%s\nclientId: %s\nclientSecret: %s\n%s",
		path, clientID, clientSecret, extra))
}

// baseline is the row every row's throughput is divided by in the table.
var baseline = row{name: "no middleware (baseline)", host: "base.localhost"}

// The rows, in the order of each round. The floors (bench/floors) are the least a
// middleware under yaegi can do for each kind of row: the plugin's rows are read against
// them.
var rows = []row{
	baseline,
	{name: "no-op Yaegi plugin", host: "noop.localhost", middleware: harness.PluginMiddleware("noop", "{}")},
	{name: "floor, cached", host: "floor-cached.localhost", middleware: harness.PluginMiddleware("floorcached", "{}")},
	{name: "this plugin, token cached", host: "warm.localhost", middleware: pluginRow(harness.Alias, "/active", ""), calls: 1,
		targets: []target{{"token cached vs floor, cached", "floor-cached.localhost", 0.90}}},
	{name: "floor, cached + 1 header", host: "floor-header.localhost", middleware: harness.PluginMiddleware("floorheader", "{}"),
		spoof: true, subject: "bench-user"},
	{name: "this plugin, token cached, one forwardHeaders entry", host: "header.localhost",
		middleware: pluginRow(harness.Alias, "/active", "forwardHeaders:\n  X-Auth-Subject: sub\n"), spoof: true, calls: 1, subject: "bench-user",
		targets: []target{{"one forwardHeaders entry vs floor, cached + 1 header", "floor-header.localhost", 0.90}}},
	{name: "this plugin, token cached, a two-clause claims rule", host: "claims.localhost",
		middleware: pluginRow(harness.Alias, "/claims", "claims: 'Equals(`sub`, `bench-user`) && OneOf(`client_id`, `"+clientID+"`, `other`)'\n"), calls: 1,
		targets: []target{{"a two-clause claims rule vs floor, cached", "floor-cached.localhost", 0.90}}},
	{name: "floor, DPoP proof (ES256 signature only)", host: "floor-dpop.localhost", dpop: true,
		middleware: harness.PluginMiddleware("floordpop", "{}")},
	{name: "this plugin, DPoP-bound token cached, fresh proof per request", host: "dpop.localhost", dpop: true, refusesReplay: true, calls: 1,
		middleware: pluginRow(harness.Alias, "/dpop", "dpopProofMaxAge: "+dpopProofMaxAge.String()+"\n")},
	// cacheSize 1 keeps one of the pool's tokens at a time: nearly every request misses the
	// process's cache, and Redis (sharedCache) answers it, as it answers a replica that has
	// not seen the token. The endpoint is asked once per token, in the warm-up.
	{name: "this plugin, local miss that the shared cache (Redis) answers", host: "shared.localhost", pool: 256, calls: 1,
		middleware: pluginRow(harness.Alias, "/active", "cacheSize: 1\ncacheTTL: 1h\nsharedCache: {sharedCache}\nsharedCacheKeyFile: {sharedCacheKeyFile}\n"),
		targets:    []target{{"local miss answered by Redis vs cacheTTL 0s", "nocache.localhost", 1.0}}},
	{name: "floor, uncached", host: "floor-uncached.localhost", unique: true, calls: 3,
		middleware: pluginRow("flooruncached", "/active", "")},
	{name: "this plugin, cacheTTL: 0s", host: "nocache.localhost", middleware: pluginRow(harness.Alias, "/active", "cacheTTL: 0s\n"), unique: true, calls: 3,
		targets: []target{
			{"cacheTTL 0s vs floor, uncached", "floor-uncached.localhost", 0.85},
			{"cacheTTL 0s vs ForwardAuth", "forward.localhost", 1.3},
		}},
	{name: "ForwardAuth + introspecting adapter", host: "forward.localhost", middleware: "forwardAuth:\n  address: %s\n", unique: true, calls: 3},
}

// cachedRow is the row whose throughput bounds the DPoP rows' (measureRows): the same
// cached token, without a proof to check. It runs before them in each round.
const cachedRow = "warm.localhost"

// rowIndex is the place in rows of the row for host.
func rowIndex(host string) int {
	for i, r := range rows {
		if r.host == host {
			return i
		}
	}
	panic("no row for " + host)
}

// Routes checked but not timed, beside the rows.
var (
	herdRoute     = row{host: "herd.localhost", middleware: pluginRow(harness.Alias, "/slow", "")}                 // calls stay in flight while the herd arrives
	floodRoute    = row{host: "flood.localhost", middleware: pluginRow(harness.Alias, "/flood", ""), unique: true} // answers carry 64 KiB of claims; default cacheSize
	inactiveRoute = row{host: "inactive.localhost", middleware: pluginRow(harness.Alias, "/inactive", "")}         // every token is inactive
)

func routes() []row {
	return append(append([]row{}, rows...), herdRoute, floodRoute, inactiveRoute)
}

// dynamic is the file-provider configuration: one router per route, every one to the same
// backend; the ForwardAuth row's middleware points at the adapter, the others at the
// endpoint, and the shared cache row's at Redis too (shared fills in {sharedCache} and
// {sharedCacheKeyFile}).
func dynamic(asURL, adapterURL, backendURL string, shared *strings.Replacer) string {
	var config []harness.Route
	for _, r := range routes() {
		middleware := shared.Replace(r.middleware)
		if strings.Contains(middleware, "%s") {
			target := asURL
			if strings.HasPrefix(middleware, "forwardAuth") {
				target = adapterURL
			}
			middleware = fmt.Sprintf(middleware, target)
		}
		config = append(config, harness.Route{Host: r.host, Middleware: middleware})
	}
	return harness.Dynamic(backendURL, config)
}

// floors are the local plugins beside this one: the no-op plugin and the floors.
func floors() ([]harness.LocalPlugin, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	var plugins []harness.LocalPlugin
	for _, f := range []struct{ alias, dir string }{
		{"noop", "noop"}, {"floorcached", "cached"}, {"floorheader", "header"}, {"flooruncached", "uncached"}, {"floordpop", "dpop"},
	} {
		p, err := harness.SourcePlugin(f.alias, filepath.Join(root, "e2e", "bench", "floors", f.dir))
		if err != nil {
			return nil, err
		}
		plugins = append(plugins, p)
	}
	return plugins, nil
}

func run(o options) error {
	bin := os.Getenv("TRAEFIK_BIN")
	if bin == "" {
		return errors.New("TRAEFIK_BIN is not set: run the benchmark with `make bench`")
	}
	var pin pinning
	if !o.smoke {
		var err error
		if pin, err = pinCPUs(); err != nil {
			return err
		}
	}

	key, err := newDPoPKey()
	if err != nil {
		return err
	}
	as := newAuthServer(key.jkt)
	asServer := httptest.NewServer(as)
	defer asServer.Close()
	adapter := httptest.NewServer(forwardAuthAdapter(asServer.URL + "/active"))
	defer adapter.Close()
	backendServer := httptest.NewServer(backend())
	defer backendServer.Close()
	dir, err := os.MkdirTemp("", "tokengate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	plugins, err := floors()
	if err != nil {
		return err
	}
	redis, err := harness.StartRedis(dir, harness.RedisOptions{})
	if err != nil {
		return err
	}
	defer redis.Stop()
	keyFile := filepath.Join(dir, "shared.key")
	if err := os.WriteFile(keyFile, []byte(harness.RandomID()+harness.RandomID()), 0o600); err != nil {
		return err
	}
	shared := strings.NewReplacer("{sharedCache}", redis.URL(), "{sharedCacheKeyFile}", keyFile)
	tr, err := harness.Start(bin, dir, dynamic(asServer.URL, adapter.URL, backendServer.URL, shared), harness.Options{
		Plugins: plugins,
		Quiet:   true,
		CPUs:    pin.traefik,
	})
	if err != nil {
		return err
	}
	defer tr.Stop()
	for _, r := range routes() {
		if err := tr.WaitRouted(r.host); err != nil {
			return fmt.Errorf("%v; Traefik's log:\n%s", err, tr.Logs())
		}
	}
	c := newClient(tr.URL, 1)

	fmt.Println("Checks (counts, no timings)")
	wrong := checkRows(c, as, key)
	wrong += checkHerd(tr.URL, as)
	if wrong > 0 {
		return fmt.Errorf("%d checks failed; Traefik's log:\n%s", wrong, tr.Logs())
	}
	if o.smoke {
		return nil
	}

	scripts, err := writeScripts(dir)
	if err != nil {
		return err
	}
	l := load{url: tr.URL + "/", threads: pin.loadThreads, connections: o.connections, cpus: pin.load, scripts: scripts}
	fmt.Printf("\n%s\n", describeRun(o, pin, filepath.Base(bin)))
	table, err := measureRows(o, l, as, key, tr.Pid())
	if err != nil {
		return err
	}
	fmt.Println()
	table.print()
	flood, err := measureFlood(o, l, as, tr.Pid())
	if err != nil {
		return err
	}
	fmt.Println()
	flood.print()
	fmt.Println()
	printTargets(table, flood)
	return nil
}

// client sends single requests to Traefik's web entry point.
type client struct {
	url  string
	http *http.Client
}

func newClient(url string, connections int) client {
	return client{url: url, http: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: connections},
		Timeout:   30 * time.Second,
	}}
}

// answer is what a client of Traefik saw.
type answer struct {
	status        int
	reached       bool   // the backend answered
	challenge     string // the first WWW-Authenticate
	dpopChallenge string // the WWW-Authenticate of the DPoP scheme, "" when none
	identity      string // what the backend got of X-Auth-Subject, in every spelling
}

// forged is the identity header the spoofing rows send, as a client would write it.
const forged = "X_Auth_Subject"

// send sends token as a bearer token, or under the DPoP scheme with proof when there is one.
func (c client) send(host, token, proof string, spoof bool) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, c.url+"/", nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+token)
	if proof != "" {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
	}
	if spoof {
		req.Header[forged] = []string{"mallory"}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	resp.Body.Close()
	a := answer{status: resp.StatusCode, reached: resp.Header.Get(backendHeader) != "",
		challenge: resp.Header.Get("WWW-Authenticate"), identity: resp.Header.Get(identityHeader)}
	for _, challenge := range resp.Header.Values("WWW-Authenticate") {
		if strings.HasPrefix(challenge, "DPoP ") {
			a.dpopChallenge = challenge
		}
	}
	return a, nil
}

// htu is the URL the proofs for a row's requests name (RFC 9449 §4.2): the plugin sees
// http, the row's Host and the path "/".
func htu(r row) string {
	return "http://" + r.host + "/"
}

// checkRows sends three requests to each row, as the table's runs will (a DPoP row's each
// with a new proof by key), then the last proof again to a row that refuses replays, and one
// request to the flood's and the inactive route, and counts what the endpoint was asked. It
// prints each check and returns how many failed.
func checkRows(c client, as *harness.AuthServer, key *dpopKey) int {
	wrong := 0
	nonce := time.Now().UnixNano()
	for i, r := range rows {
		calls := as.TotalCalls()
		reached := 0
		identity := ""
		token := fmt.Sprintf("check-%d-%d", nonce, i)
		proof := ""
		for n := 0; n < 3; n++ {
			if r.unique {
				token = fmt.Sprintf("check-%d-%d-%d", nonce, i, n)
			}
			var err error
			if r.dpop {
				if proof, err = key.proof(htu(r), token); err != nil {
					fmt.Printf("  WRONG  %s: signing a proof: %v\n", r.name, err)
					return wrong + 1
				}
			}
			a, err := c.send(r.host, token, proof, r.spoof)
			if err == nil && a.status == http.StatusOK && a.reached {
				reached++
				identity = a.identity
			}
		}
		wantIdentity := ""
		if r.subject != "" {
			wantIdentity = "X-Auth-Subject=" + r.subject
		}
		wrong += report(fmt.Sprintf("%s: 3 requests reach the backend with identity %q and make %d introspection calls",
			r.name, wantIdentity, r.calls),
			fmt.Sprintf("%d reached, identity %q, %d calls", reached, identity, as.TotalCalls()-calls),
			reached == 3 && identity == wantIdentity && as.TotalCalls()-calls == r.calls)
		if r.pool > 0 {
			// Another token takes the one place of the process's cache: the first is now a
			// local miss, which Redis answers.
			calls := as.TotalCalls()
			other, _ := c.send(r.host, token+"-other", "", false)
			again, err := c.send(r.host, token, "", false)
			wrong += report(fmt.Sprintf("%s: a token pushed out of the process's cache is answered from Redis, with no call", r.name),
				fmt.Sprintf("%d then %d, %d calls, err %v", other.status, again.status, as.TotalCalls()-calls, err),
				err == nil && other.status == http.StatusOK && again.status == http.StatusOK && again.reached && as.TotalCalls()-calls == 1)
		}
		if r.refusesReplay {
			calls := as.TotalCalls()
			a, err := c.send(r.host, token, proof, r.spoof)
			wantChallenge := `DPoP error="invalid_dpop_proof", algs=`
			wrong += report(fmt.Sprintf("%s: a replayed proof is refused with 401 invalid_dpop_proof and no call", r.name),
				fmt.Sprintf("%d %q, reached %v, %d calls, err %v", a.status, a.dpopChallenge, a.reached, as.TotalCalls()-calls, err),
				err == nil && a.status == http.StatusUnauthorized && !a.reached && strings.HasPrefix(a.dpopChallenge, wantChallenge) &&
					as.TotalCalls()-calls == 0)
		}
	}

	calls := as.TotalCalls()
	a, err := c.send(floodRoute.host, fmt.Sprintf("check-%d-flood", nonce), "", false)
	wrong += report("a token whose answer carries 64 KiB of claims passes after 1 call",
		fmt.Sprintf("%d, %d calls, err %v", a.status, as.TotalCalls()-calls, err),
		err == nil && a.status == http.StatusOK && a.reached && as.TotalCalls()-calls == 1)

	calls = as.TotalCalls()
	a, err = c.send(inactiveRoute.host, fmt.Sprintf("check-%d-inactive", nonce), "", false)
	wantChallenge := `Bearer realm="traefik", error="invalid_token"`
	wrong += report("an inactive token is refused with 401 invalid_token after 1 call",
		fmt.Sprintf("%d %q, %d calls, err %v", a.status, a.challenge, as.TotalCalls()-calls, err),
		err == nil && a.status == http.StatusUnauthorized && a.challenge == wantChallenge && as.TotalCalls()-calls == 1)
	return wrong
}

// checkHerd sends herds of concurrent requests with new tokens to the route whose endpoint
// is slow, so that they arrive while the first call for their token is in flight.
func checkHerd(url string, as *harness.AuthServer) int {
	nonce := time.Now().UnixNano()
	one := []string{fmt.Sprintf("herd-%d", nonce)}
	var hundred []string
	for i := 0; i < 100; i++ {
		hundred = append(hundred, fmt.Sprintf("herd-%d-%d", nonce, i))
	}
	wrong := 0
	for _, h := range []struct {
		tokens []string
		copies int
	}{{one, 1000}, {hundred, 50}} {
		calls := as.TotalCalls()
		reached := herd(url, h.tokens, h.copies)
		made := as.TotalCalls() - calls
		total := len(h.tokens) * h.copies
		wrong += report(fmt.Sprintf("herd: %d distinct new tokens, each in %d concurrent requests, make %d introspection calls",
			len(h.tokens), h.copies, len(h.tokens)),
			fmt.Sprintf("%d calls, %d of %d requests reached the backend", made, reached, total),
			made == len(h.tokens) && reached == total)
	}
	return wrong
}

// herd sends copies requests with each token, all at once, each on its own connection, and
// returns how many reached the backend.
func herd(url string, tokens []string, copies int) int {
	c := newClient(url, len(tokens)*copies)
	defer c.http.CloseIdleConnections()
	start := make(chan struct{})
	results := make(chan bool)
	for _, token := range tokens {
		for n := 0; n < copies; n++ {
			go func() {
				<-start
				a, err := c.send(herdRoute.host, token, "", false)
				results <- err == nil && a.status == http.StatusOK && a.reached
			}()
		}
	}
	close(start)
	reached := 0
	for i := 0; i < len(tokens)*copies; i++ {
		if <-results {
			reached++
		}
	}
	return reached
}

func report(what, got string, ok bool) int {
	if ok {
		fmt.Printf("  ok     %s\n", what)
		return 0
	}
	fmt.Printf("  WRONG  %s: got %s\n", what, got)
	return 1
}

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// describeRun says what the table was measured on and how.
func describeRun(o options, pin pinning, traefik string) string {
	return fmt.Sprintf("Date: %s\nMachine: %s, %d CPUs, Linux %s\nPeers: %s, %s, Go %s\nPinning: %s\n"+
		"Load: wrk, %d thread(s), %d connections, %s per row and round, %d interleaved rounds; each figure the median over the rounds",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), osRelease(),
		traefik, wrkVersion(), strings.TrimPrefix(runtime.Version(), "go"), pin.describe,
		pin.loadThreads, o.connections, o.duration, o.rounds)
}
