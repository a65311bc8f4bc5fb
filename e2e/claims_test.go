package e2e_test

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// Claims rules (claims), error descriptions (errorDescription) and the log of refusals
// (logRejections) through a real Traefik v3.6 against node oidc-provider, whose
// introspection answers carry extra claims per client (its extraTokenClaims, see
// e2e/oidc-provider/server.mjs). Every route here calls one endpoint as one client, so all
// share one cache (README "Caching"): a token costs one introspection call, whatever the
// routes that judge it.

// The middleware's introspection client, and the two clients whose tokens carry claims.
const (
	claimsClient = "gw-claims"
	claimsSecret = "gw-claims-secret"
	acmeClient   = "svc-acme"
	acmeSecret   = "svc-acme-secret"
	globexClient = "svc-globex"
	globexSecret = "svc-globex-secret"
)

// The claims of each client's tokens. acme has a member whose name holds a dot ("org.unit"),
// globex an object org with a member unit: `org\.unit` names the first, `org.unit` the second.
var (
	acmeClaims = map[string]any{
		"sub":      "svc-acme-reports",
		"tenant":   "acme",
		"roles":    []any{"reports", "billing"},
		"ext":      map[string]any{"group": "ops", "verified": true, "level": 3},
		"org.unit": "sales",
	}
	globexClaims = map[string]any{
		"sub":    "svc-globex",
		"tenant": "globex",
		"roles":  []any{"viewer"},
		"ext":    map[string]any{"group": "dev", "verified": false, "level": 1},
		"org":    map[string]any{"unit": "sales"},
	}
)

// startClaimsProvider runs oidc-provider with the middleware's client and the two clients
// whose tokens carry claims, besides what config registers.
func startClaimsProvider(t *testing.T, config harness.OPConfig) *harness.OIDCProvider {
	t.Helper()
	config.Clients = append([]map[string]any{
		{"client_id": claimsClient, "client_secret": claimsSecret},
		{"client_id": acmeClient, "client_secret": acmeSecret, "scope": harness.OPScopes},
		{"client_id": globexClient, "client_secret": globexSecret, "scope": harness.OPScopes},
	}, config.Clients...)
	extra := map[string]map[string]any{acmeClient: acmeClaims, globexClient: globexClaims}
	for client, claims := range config.ExtraClaims {
		extra[client] = claims
	}
	config.ExtraClaims = extra
	op, _ := startOIDCProviderWith(t, t.TempDir(), config)
	return op
}

// claimsOptions is a route's configuration: oidc-provider's endpoint as claimsClient, the
// identity headers, and more.
func claimsOptions(op *harness.OIDCProvider, more string) string {
	return fmt.Sprintf("endpoint: %q\nclientId: %s\nclientSecret: %s\n"+
		"forwardHeaders: {X-Auth-Client: client_id, X-Auth-Tenant: tenant, X-Auth-Scope: scope}\n%s",
		op.Issuer+harness.OPIntrospectionPath, claimsClient, claimsSecret, more)
}

// tokenAs asks oidc-provider for a client_credentials token of client with scope for
// resource ("" for the default one).
func tokenAs(t *testing.T, op *harness.OIDCProvider, client, secret, scope, resource string) string {
	t.Helper()
	token, err := op.TokenAs(client, secret, scope, resource)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// A rule of each kind, over top-level, nested and list claims, each holding for one token
// and not for another: the token that meets it reaches the backend, the other gets 403
// insufficient_scope without a scope attribute, and the backend never sees it. The rule is
// judged on every request, on the shared cached answer too: each token costs one call in
// all. A malformed rule stops New: Traefik logs the error and does not serve that router,
// while the others go on.
func TestClaimsThroughTraefik(t *testing.T) {
	op := startClaimsProvider(t, harness.OPConfig{})
	const broken = "Equals(`tenant`, `acme`) && && Contains(`roles`, `x`)"
	rules := map[string]string{
		"tenant.localhost":   "Equals(`tenant`, `acme`)",
		"nested.localhost":   "Equals(`ext.group`, `ops`)",
		"list.localhost":     "Contains(`roles`, `reports`)",
		"substr.localhost":   "Contains(`sub`, `acme`)",
		"prefix.localhost":   "Prefix(`sub`, `svc-g`)",
		"dotted.localhost":   "Equals(`org\\.unit`, `sales`)",
		"path.localhost":     "Equals(`org.unit`, `sales`)",
		"split.localhost":    "SplitContains(`scope`, ` `, `write`)",
		"oneof.localhost":    "OneOf(`ext.group`, `sre`, `ops`)",
		"json.localhost":     "Equals(`ext.level`, `3`) && Equals(`ext.verified`, `true`)",
		"combined.localhost": "Prefix(`sub`, `svc-`) && (Contains(`roles`, `admin`) || OneOf(`ext.group`, `ops`, `sre`)) && !Equals(`ext.verified`, `false`)",
		"not.localhost":      "!Equals(`tenant`, `acme`)",
	}
	routes := map[string]string{"broken.localhost": claimsOptions(op, "claims: "+yamlSingle(broken))}
	for host, rule := range rules {
		routes[host] = claimsOptions(op, "claims: "+yamlSingle(rule))
	}
	tr := startTraefik(t, harness.Routes(serve(t, harness.Backend()), routes))
	for host := range rules {
		waitRouted(t, tr, host)
	}

	acme := tokenAs(t, op, acmeClient, acmeSecret, "read write", "")
	acmeRead := tokenAs(t, op, acmeClient, acmeSecret, "read", "")
	globex := tokenAs(t, op, globexClient, globexSecret, "read write", "")
	plain := opToken(t, op, "read write", "") // the token client's: no extra claims at all
	// The peer itself: the extra claims are members of the answer, beside its own.
	assertAnswer(t, op, acme, map[string]any{"active": true, "client_id": acmeClient, "sub": "svc-acme-reports",
		"tenant": "acme", "roles": []any{"reports", "billing"}, "org.unit": "sales", "scope": "read write",
		"ext": map[string]any{"group": "ops", "verified": true, "level": float64(3)}})
	assertAnswer(t, op, plain, map[string]any{"active": true, "client_id": harness.OPTokenClientID, "sub": nil, "tenant": nil})
	calls := counter(t, op, harness.OPIntrospectionPath)
	refused := []string{`Bearer realm="traefik", error="insufficient_scope"`, dpopLine}

	// Each row: the route, then which of acme, acmeRead, globex and plain pass it.
	for _, c := range []struct {
		host  string
		pass  [4]bool
		calls int // introspection calls the row makes: the first sight of each token
	}{
		{"tenant.localhost", [4]bool{true, true, false, false}, 4},
		{"nested.localhost", [4]bool{true, true, false, false}, 0},
		{"list.localhost", [4]bool{true, true, false, false}, 0},
		{"substr.localhost", [4]bool{true, true, false, false}, 0},
		{"prefix.localhost", [4]bool{false, false, true, false}, 0},
		{"dotted.localhost", [4]bool{true, true, false, false}, 0},
		{"path.localhost", [4]bool{false, false, true, false}, 0},
		{"split.localhost", [4]bool{true, false, true, true}, 0},
		{"oneof.localhost", [4]bool{true, true, false, false}, 0},
		{"json.localhost", [4]bool{true, true, false, false}, 0},
		{"combined.localhost", [4]bool{true, true, false, false}, 0},
		// A claim that is not there is not equal to anything.
		{"not.localhost", [4]bool{false, false, true, true}, 0},
	} {
		tokens := []string{acme, acmeRead, globex, plain}
		names := []string{"acme", "acme read", "globex", "no claims"}
		clients := []string{acmeClient, acmeClient, globexClient, harness.OPTokenClientID}
		tenants := []string{"acme", "acme", "globex", ""}
		scopes := []string{"read write", "read", "read write", "read write"}
		for i, token := range tokens {
			what := c.host + " " + rules[c.host] + ", " + names[i]
			a := send(t, tr, c.host, "/", token)
			if c.pass[i] {
				assertAdmitted(t, what, a, map[string]string{"X-Auth-Client": clients[i], "X-Auth-Tenant": tenants[i],
					"X-Auth-Scope": scopes[i], "Authorization": "Bearer " + token})
				continue
			}
			if a.Status != http.StatusForbidden || a.Seen != nil || !slices.Equal(a.Challenges, refused) {
				t.Errorf("%s: got %d (backend reached: %v) with %q, want 403 from the middleware with %q",
					what, a.Status, a.Seen != nil, a.Challenges, refused)
			}
		}
		assertCount(t, c.host+": introspection calls", calls(), c.calls)
	}
	// Once more each, now that every answer is cached: the rule is judged again.
	assertAdmitted(t, "tenant, cached", send(t, tr, "tenant.localhost", "/", acme), map[string]string{"X-Auth-Tenant": "acme"})
	assertRefused(t, send(t, tr, "tenant.localhost", "/", globex), http.StatusForbidden, refused[0])
	assertCount(t, "cached: introspection calls", calls(), 0)

	t.Run("malformed rule", func(t *testing.T) {
		// Traefik's own 404: no router matches broken.localhost.
		if a := send(t, tr, "broken.localhost", "/", acme); a.Status != http.StatusNotFound || a.Seen != nil {
			t.Errorf("broken.localhost: got %d (backend reached: %v), want Traefik's 404", a.Status, a.Seen != nil)
		}
		// 1-based, in bytes: the second && starts at column 29. Traefik logs New's error as
		// the router's: ERR ... error="claims: unexpected \"&&\" at column 29" ...
		// routerName=broken@file.
		want := `claims: unexpected "&&" at column ` + strconv.Itoa(strings.Index(broken, "&& &&")+4)
		if !waitLog(tr, "routerName=broken@file", " ERR ", `error=`+strconv.Quote(want)) {
			t.Errorf("traefik log has no error line of router broken@file with %q", want)
		}
		assertCount(t, "malformed rule: introspection calls", calls(), 0)
	})
	assertLogHoldsNo(t, tr, acme, acmeRead, globex, plain, claimsSecret, acmeSecret, globexSecret)
}

// errorDescription in the challenge of each kind of refusal (a fixed phrase, never a claim
// value or the token), none on a 401 without a token; logRejections' line for each, with
// the sub and client_id of the answer when it has them. Then a burst of refusals: at most
// 10 lines a second, and a later line says how many went unlogged, so that the lines and
// the count account for every refusal.
func TestRejectionsExplained(t *testing.T) {
	op := startClaimsProvider(t, harness.OPConfig{})
	const rule = "Equals(`tenant`, `acme`)"
	explain := fmt.Sprintf("requiredScopes: [write]\naudiences: [%q]\nclaims: %s\nerrorDescription: true\nlogRejections: true",
		harness.OPResource, yamlSingle(rule))
	tr := startRoutes(t, map[string]string{
		"explain.localhost": claimsOptions(op, explain),
		// The same without either: the challenges stay as they were, nothing is logged.
		"quiet.localhost": claimsOptions(op, fmt.Sprintf("requiredScopes: [write]\naudiences: [%q]\nclaims: %s",
			harness.OPResource, yamlSingle(rule))),
		"burst.localhost": claimsOptions(op, "claims: "+yamlSingle(rule)+"\nlogRejections: true"),
	})
	calls := counter(t, op, harness.OPIntrospectionPath)
	acme := tokenAs(t, op, acmeClient, acmeSecret, "read write", "")
	acmeRead := tokenAs(t, op, acmeClient, acmeSecret, "read", "")
	acmeOther := tokenAs(t, op, acmeClient, acmeSecret, "read write", harness.OPOtherResource)
	globex := tokenAs(t, op, globexClient, globexSecret, "read write", "")
	plain := opToken(t, op, "read write", "")
	const unknown = "tokengate-never-issued-0123456789" // oidc-provider answers active: false
	client := harness.Client(nil, nil)
	t.Cleanup(client.CloseIdleConnections)

	// explain-auth refuses 8 requests here, with startRoutes' one: within the 10 lines a
	// second it may log, so that none is dropped.
	acmeWho := `, sub "svc-acme-reports", client_id "svc-acme"`
	for _, c := range []struct {
		what      string
		auth      string // the Authorization header
		status    int
		challenge string // the Bearer line; the DPoP line follows it unchanged
		quiet     string // the Bearer line without errorDescription
		logged    string // the log line after "explain-auth@file: "; "" for none
		calls     int
	}{
		{what: "malformed token", auth: "Bearer a b", status: 400,
			challenge: `Bearer realm="traefik", error="invalid_request", error_description="malformed token"`,
			quiet:     `Bearer realm="traefik", error="invalid_request"`, logged: "refused 400: malformed token"},
		{what: "inactive token", auth: "Bearer " + unknown, status: 401,
			challenge: `Bearer realm="traefik", error="invalid_token", error_description="token inactive"`,
			quiet:     `Bearer realm="traefik", error="invalid_token"`, logged: "refused 401: token inactive", calls: 1},
		{what: "another resource's token", auth: "Bearer " + acmeOther, status: 401,
			challenge: `Bearer realm="traefik", error="invalid_token", error_description="audience mismatch"`,
			quiet:     `Bearer realm="traefik", error="invalid_token"`, logged: "refused 401: audience mismatch" + acmeWho, calls: 1},
		{what: "a scope missing", auth: "Bearer " + acmeRead, status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", error_description="missing scope: write", scope="write"`,
			quiet:     `Bearer realm="traefik", error="insufficient_scope", scope="write"`,
			logged:    "refused 403: missing scope: write" + acmeWho, calls: 1},
		// The route has requiredScopes: the rule's 403 names them too.
		{what: "claims rule not met", auth: "Bearer " + globex, status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", error_description="claims rule not met", scope="write"`,
			quiet:     `Bearer realm="traefik", error="insufficient_scope", scope="write"`,
			logged:    `refused 403: claims rule not met, sub "svc-globex", client_id "svc-globex"`, calls: 1},
		{what: "claims rule not met, an answer without sub", auth: "Bearer " + plain, status: 403,
			challenge: `Bearer realm="traefik", error="insufficient_scope", error_description="claims rule not met", scope="write"`,
			quiet:     `Bearer realm="traefik", error="insufficient_scope", scope="write"`,
			logged:    `refused 403: claims rule not met, client_id "` + harness.OPTokenClientID + `"`, calls: 1},
		{what: "admitted", auth: "Bearer " + acme, calls: 1},
		{what: "no token", status: 401, challenge: `Bearer realm="traefik"`, quiet: `Bearer realm="traefik"`,
			logged: "refused 401: no token"},
	} {
		for _, host := range []string{"explain.localhost", "quiet.localhost"} {
			before := refusalLines(tr, "explain-auth@file")
			req := get(t, tr.HostURL(host)+"/reports", c.auth)
			a, err := harness.DoWith(client, req)
			if err != nil {
				t.Fatal(err)
			}
			what := host + ", " + c.what
			if c.status == 0 {
				assertAdmitted(t, what, a, map[string]string{"X-Auth-Client": acmeClient, "X-Auth-Tenant": "acme"})
			} else {
				want := []string{c.challenge, dpopLine}
				if host == "quiet.localhost" {
					want[0] = c.quiet
				}
				if a.Status != c.status || a.Seen != nil || !slices.Equal(a.Challenges, want) {
					t.Errorf("%s: got %d (backend reached: %v) with %q, want %d from the middleware with %q",
						what, a.Status, a.Seen != nil, a.Challenges, c.status, want)
				}
			}
			// The calls are made by the first route; the second uses the shared cache.
			if host == "explain.localhost" {
				assertCount(t, what+": introspection calls", calls(), c.calls)
			} else {
				assertCount(t, what+": introspection calls", calls(), 0)
			}
			if host == "explain.localhost" && c.logged != "" {
				waitRefusals(tr, "explain-auth@file", len(before)+1)
			}
			got := refusalLines(tr, "explain-auth@file")[len(before):]
			switch {
			case host == "quiet.localhost" || c.logged == "":
				// The quiet route's refusals are not explain-auth's; an admitted request is
				// no refusal.
				if len(got) != 0 {
					t.Errorf("%s: logged %q, want nothing", what, got)
				}
			case len(got) != 1 || got[0] != c.logged:
				t.Errorf("%s: logged %q, want exactly [%q]", what, got, c.logged)
			}
		}
	}
	if lines := refusalLines(tr, "quiet-auth@file"); len(lines) != 0 {
		t.Errorf("quiet-auth logged %q, want nothing: logRejections is off", lines)
	}

	t.Run("burst", func(t *testing.T) {
		// 50 refusals at once, then one more once the line that counts the unlogged ones is
		// there: every refusal is either a line of its own or counted in such a line.
		burstURL := tr.HostURL("burst.localhost") + "/"
		const burst = 50
		var wg sync.WaitGroup
		reqs, statuses := make([]*http.Request, burst), make([]int, burst)
		for i := range reqs {
			reqs[i] = get(t, burstURL, "Bearer "+globex)
		}
		for w := 0; w < 5; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < burst; i += 5 {
					if a, err := harness.DoWith(client, reqs[i]); err == nil {
						statuses[i] = a.Status
					}
				}
			}(w)
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusForbidden {
				t.Fatalf("burst request %d got %d, want 403", i, s)
			}
		}
		// The count is logged at the end of the limit's second (a wait for a line, not a
		// measurement).
		_ = harness.WaitUntil(10*time.Second, 20*time.Millisecond, func() (bool, error) {
			return len(unloggedCounts(tr, "burst-auth@file")) > 0, nil
		})
		if a, err := harness.DoWith(client, get(t, burstURL, "Bearer "+globex)); err != nil || a.Status != http.StatusForbidden {
			t.Fatalf("the request after the burst: %v, %+v; want 403", err, a)
		}
		waitRefusals(tr, "burst-auth@file", 1)
		assertCount(t, "burst: introspection calls (globex is cached)", calls(), 0)

		// Before the burst, burst-auth refused the one request without a token that found
		// its router (startRoutes): logged, as the first of its second.
		const line = `refused 403: claims rule not met, sub "svc-globex", client_id "svc-globex"`
		var lines []string
		for _, l := range refusalLines(tr, "burst-auth@file") {
			switch l {
			case line:
				lines = append(lines, l)
			case "refused 401: no token":
			default:
				t.Errorf("burst-auth logged %q, want %q", l, line)
			}
		}
		counts := unloggedCounts(tr, "burst-auth@file")
		notLogged := 0
		for _, n := range counts {
			notLogged += n
		}
		// 10 a second: the burst spans at most two of the limit's seconds on a slow machine.
		if len(lines) > 21 || len(counts) == 0 {
			t.Errorf("burst-auth logged %d lines and %d counts of unlogged refusals for %d refusals, "+
				"want at most 10 lines a second and a count", len(lines), len(counts), burst+1)
		}
		if len(lines)+notLogged != burst+1 {
			t.Errorf("%d lines and %d refusals counted as not logged, want them to account for the %d refusals",
				len(lines), notLogged, burst+1)
		}
		// The request after the count is a line of its own: the limit's new second had room.
		if all := pluginLines(tr, "burst-auth@file"); len(all) == 0 || all[len(all)-1] != line {
			t.Errorf("the request after the count logged no line of its own")
		}
	})
	assertLogHoldsNo(t, tr, acme, acmeRead, acmeOther, globex, plain, unknown, claimsSecret, acmeSecret, globexSecret)
}

// pluginFields are what Traefik appends to each line the plugin logs: Traefik's log has
// "<time> ERR .../log/log.go:244 > <yaegi's date and time> <the line><pluginFields>".
const pluginFields = " module=" + harness.Module + " plugin=plugin-" + harness.Alias + " runtime="

// pluginLines are the lines the plugin logged about the middleware, each from after its
// name and ": " to its end, without pluginFields.
func pluginLines(tr *harness.Traefik, middleware string) []string {
	var lines []string
	for _, line := range strings.Split(tr.Logs(), "\n") {
		if _, rest, ok := strings.Cut(line, " "+middleware+": "); ok && !strings.Contains(line, "Configuration received") {
			lines = append(lines, strings.TrimSuffix(rest, pluginFields))
		}
	}
	return lines
}

// refusalLines is what Traefik's log holds of the middleware's logRejections lines, in
// order: each from "refused" on.
func refusalLines(tr *harness.Traefik, middleware string) []string {
	var lines []string
	for _, line := range pluginLines(tr, middleware) {
		if strings.HasPrefix(line, "refused ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// unloggedCounts is what Traefik's log holds of the middleware's lines that count the
// refusals it did not log, in order: "<name>: N refusals not logged since the last line (over
// 10 a second)".
func unloggedCounts(tr *harness.Traefik, middleware string) []int {
	pattern := regexp.MustCompile(`^(\d+) refusals not logged since the last line \(over 10 a second\)$`)
	var counts []int
	for _, line := range pluginLines(tr, middleware) {
		if m := pattern.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			counts = append(counts, n)
		}
	}
	return counts
}

// waitRefusals waits until Traefik's log holds n logRejections lines of the middleware, or
// 5 s pass: Traefik may write a line after the client has its answer.
func waitRefusals(tr *harness.Traefik, middleware string, n int) {
	_ = harness.WaitUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		return len(refusalLines(tr, middleware)) >= n, nil
	})
}

// waitLog reports whether a line of Traefik's log holds each of parts, waiting for one up
// to 5 s.
func waitLog(tr *harness.Traefik, parts ...string) bool {
	return harness.WaitUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		for _, line := range strings.Split(tr.Logs(), "\n") {
			if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
				return true, nil
			}
		}
		return false, nil
	}) == nil
}

// assertAnswer checks members of oidc-provider's introspection answer for token (nil: the
// member is absent).
func assertAnswer(t *testing.T, op *harness.OIDCProvider, token string, want map[string]any) {
	t.Helper()
	answer, err := op.Introspect(token)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		got, has := answer[k]
		if v == nil && has || v != nil && !reflect.DeepEqual(got, v) {
			t.Errorf("oidc-provider's answer has %s = %#v, want %#v", k, got, v)
		}
	}
}

// yamlSingle is s as a YAML single-quoted scalar: a backslash stays a backslash.
func yamlSingle(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
