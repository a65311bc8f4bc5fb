// RFC 9728 protected resource metadata (resourceMetadata): the document the middleware
// answers for the route, and the resource_metadata attribute of its challenges that
// points to it, so that a client (an MCP client, say) finds the authorization server.

package introspection

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// wellKnownResource is RFC 9728 §3's well-known path.
const wellKnownResource = "/.well-known/oauth-protected-resource"

// resourceMetadata is the handler New returns for a route with resourceMetadata: it
// answers the document's reads and hands every other request to the middleware. A handler
// of its own, so that a route without the document pays nothing for it: under yaegi every
// line of ServeHTTP costs every request.
type resourceMetadata struct {
	document []byte // ready to send
	// The well-known path, and the one RFC 9728 §3.1 derives from the resource's path
	// (the same for a resource without a path).
	paths [2]string
	next  *middleware
}

// The RFC 9728 §2 members whose JSON type is fixed. A docker label holds only strings: a
// list is comma-separated, a boolean "true" or "false".
var (
	metadataLists = []string{"authorization_servers", "scopes_supported", "bearer_methods_supported", "resource_signing_alg_values_supported",
		"authorization_details_types_supported", "dpop_signing_alg_values_supported"}
	metadataBools   = []string{"tls_client_certificate_bound_access_tokens", "dpop_bound_access_tokens_required"}
	metadataStrings = []string{"resource", "jwks_uri", "resource_name", "resource_documentation", "resource_policy_uri", "resource_tos_uri"}
)

// setMetadata reads resourceMetadata: its members as given, those of a fixed type in that
// type, resource an http or https URL without a query or fragment (RFC 9728 §1.2), and
// the members the configuration decides when not given. It runs after setTokenSources
// and setBinding, whose settings those are.
func (m *middleware) setMetadata(config *Config) (*resourceMetadata, error) {
	if len(config.ResourceMetadata) == 0 {
		return nil, nil
	}
	doc := make(map[string]interface{}, len(config.ResourceMetadata)+4)
	for name, value := range config.ResourceMetadata {
		typed, err := metadataValue(name, value)
		if err != nil {
			return nil, err
		}
		doc[name] = typed
	}
	resource, _ := doc["resource"].(string)
	u, err := url.Parse(resource)
	switch {
	case resource == "":
		return nil, fmt.Errorf("resourceMetadata has no resource: the URL clients use for this API (RFC 9728 §2)")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
		return nil, fmt.Errorf("resourceMetadata.resource %q is not an http or https URL", resource)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(resource, "?#"):
		return nil, fmt.Errorf("resourceMetadata.resource %q has a query or fragment: its metadata's URL could not be derived (RFC 9728 §3.1)", resource)
	}
	m.defaultMetadata(doc, config)
	document, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("resourceMetadata cannot be written as JSON: %v", err)
	}
	// RFC 9728 §3.1: the well-known path goes between the host and the resource's path, a
	// terminating slash after the host removed.
	suffix, escaped := u.Path, u.EscapedPath()
	if suffix == "/" {
		suffix, escaped = "", ""
	}
	documentURL := u.Scheme + "://" + u.Host + wellKnownResource + escaped
	if !isQuotable(documentURL) {
		return nil, fmt.Errorf("resourceMetadata.resource %q makes a metadata URL a WWW-Authenticate quoted string cannot carry", resource)
	}
	m.metadataAttribute = `, resource_metadata="` + documentURL + `"`
	return &resourceMetadata{document: document, paths: [2]string{wellKnownResource, wellKnownResource + suffix}}, nil
}

// metadataValue is a member's value in its JSON type.
func metadataValue(name string, value interface{}) (interface{}, error) {
	switch {
	case contains(metadataLists, name):
		if s, ok := value.(string); ok {
			return cleanList(strings.Split(s, ",")), nil
		}
		if list, ok := value.([]string); ok {
			return list, nil
		}
		items, ok := value.([]interface{})
		list := make([]string, 0, len(items))
		for _, item := range items {
			s, isString := item.(string)
			ok = ok && isString
			list = append(list, s)
		}
		if !ok {
			return nil, fmt.Errorf("resourceMetadata.%s must be a list of strings", name)
		}
		return list, nil
	case contains(metadataBools, name):
		if b, ok := value.(bool); ok {
			return b, nil
		}
		s, _ := value.(string)
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("resourceMetadata.%s %q must be true or false", name, s)
		}
		return b, nil
	case contains(metadataStrings, name):
		if _, ok := value.(string); !ok {
			return nil, fmt.Errorf("resourceMetadata.%s must be a string", name)
		}
	}
	return value, nil
}

// defaultMetadata adds what the configuration says about the members it decides, unless
// given: the authorization server (issuer), the scopes (requiredScopes), how tokens may be
// sent (RFC 6750 §2's methods: the Authorization header, the query; a cookie or another
// header is none of them) and what sender-constrained tokens it takes.
func (m *middleware) defaultMetadata(doc map[string]interface{}, config *Config) {
	if _, given := doc["bearer_methods_supported"]; !given {
		methods := []string{}
		if m.bearerScheme {
			methods = append(methods, "header")
		}
		if m.tokenQuery != nil {
			methods = append(methods, "query")
		}
		doc["bearer_methods_supported"] = methods
	}
	// The MCP authorization specification needs authorization_servers; a discovered
	// server is the one (issuer).
	if _, given := doc["authorization_servers"]; !given && config.Issuer != "" {
		doc["authorization_servers"] = []string{config.Issuer}
	}
	if _, given := doc["scopes_supported"]; !given && len(m.requiredScopes) > 0 {
		doc["scopes_supported"] = m.requiredScopes
	}
	if _, given := doc["dpop_signing_alg_values_supported"]; !given && m.dpopScheme {
		doc["dpop_signing_alg_values_supported"] = verifyingAlgNames
	}
	if _, given := doc["dpop_bound_access_tokens_required"]; !given && m.dpopRequired {
		doc["dpop_bound_access_tokens_required"] = true
	}
	if _, given := doc["tls_client_certificate_bound_access_tokens"]; !given && m.certRequired {
		doc["tls_client_certificate_bound_access_tokens"] = true
	}
}

// ServeHTTP answers a GET or HEAD of the document's paths with the document, and hands
// any other request to the middleware. No token is asked for: the document is how a
// client learns where to get one.
func (md *resourceMetadata) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if (req.Method != http.MethodGet && req.Method != http.MethodHead) || (req.URL.Path != md.paths[0] && req.URL.Path != md.paths[1]) {
		md.next.ServeHTTP(rw, req)
		return
	}
	header := rw.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Content-Length", strconv.Itoa(len(md.document)))
	rw.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		_, _ = rw.Write(md.document)
	}
}
