// The file provider's dynamic configuration: one router per host, each behind its own
// middleware (this plugin's, another local plugin's) or none, all to one backend.

package harness

import (
	"fmt"
	"sort"
	"strings"
)

// Route is one router of a file-provider configuration: the requests for Host, through
// Middleware (its configuration, YAML as under http.middlewares.<name>; "" for none).
type Route struct {
	Host       string
	Middleware string
	// TLS serves Host on Options.TLS's websecure entry point too, by a router <name>-tls
	// with tls: {} through the same middleware.
	TLS bool
	// Rule is the router's rule; "" is Host(`<Host>`), every path of the host.
	Rule string
}

// Dynamic is a file-provider configuration with one router per route, in order, each
// behind its own middleware named after the host's first label, all to the backend at
// backendURL.
func Dynamic(backendURL string, routes []Route) string {
	var routers, middlewares strings.Builder
	for _, r := range routes {
		name := strings.SplitN(r.Host, ".", 2)[0]
		rule := r.Rule
		if rule == "" {
			rule = fmt.Sprintf("Host(`%s`)", r.Host)
		}
		router := fmt.Sprintf("      rule: %q\n      service: backend\n", rule)
		if r.Middleware != "" {
			router += fmt.Sprintf("      middlewares: [%s-auth]\n", name)
			fmt.Fprintf(&middlewares, "    %s-auth:\n%s", name, indent(r.Middleware, "      "))
		}
		fmt.Fprintf(&routers, "    %s:\n%s", name, router)
		if r.TLS {
			fmt.Fprintf(&routers, "    %s-tls:\n%s      entryPoints: [%s]\n      tls: {}\n", name, router, WebSecure)
		}
	}
	return "http:\n  routers:\n" + routers.String() + "  middlewares:\n" + middlewares.String() +
		"  services:\n    backend:\n      loadBalancer:\n        servers:\n          - url: " + backendURL + "\n"
}

// PluginMiddleware is the configuration of a middleware of the local plugin alias, whose
// options are YAML lines as under plugin.<alias>.
func PluginMiddleware(alias, options string) string {
	return "plugin:\n  " + alias + ":\n" + indent(options, "    ")
}

// Routes is Dynamic with a route per host, in the order of the hosts' names, each through
// this plugin's middleware with the host's options.
func Routes(backendURL string, options map[string]string) string {
	hosts := make([]string, 0, len(options))
	for host := range options {
		hosts = append(hosts, host)
	}
	sort.Strings(hosts)
	routes := make([]Route, len(hosts))
	for i, host := range hosts {
		routes[i] = Route{Host: host, Middleware: PluginMiddleware(Alias, options[host])}
	}
	return Dynamic(backendURL, routes)
}

// indent puts by before each line of text.
func indent(text, by string) string {
	return by + strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n"+by) + "\n"
}
