package loader

import (
	"encoding/json"
	"testing"

	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/parser"
	"gopkg.in/yaml.v3"
)

// The part of Traefik's dynamic configuration (pkg/config/dynamic) that the README examples
// use, with Traefik's struct tags: paerser refuses keys its target does not have.
type (
	Dynamic struct {
		HTTP *HTTP      `json:"http,omitempty" toml:"http,omitempty" yaml:"http,omitempty" export:"true"`
		TLS  *TLSConfig `json:"tls,omitempty" toml:"tls,omitempty" yaml:"tls,omitempty" export:"true"`
	}
	HTTP struct {
		Routers     map[string]*Router     `json:"routers,omitempty" toml:"routers,omitempty" yaml:"routers,omitempty" export:"true"`
		Services    map[string]*Service    `json:"services,omitempty" toml:"services,omitempty" yaml:"services,omitempty" export:"true"`
		Middlewares map[string]*Middleware `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
	}
	Router struct {
		EntryPoints []string   `json:"entryPoints,omitempty" toml:"entryPoints,omitempty" yaml:"entryPoints,omitempty" export:"true"`
		Middlewares []string   `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
		Service     string     `json:"service,omitempty" toml:"service,omitempty" yaml:"service,omitempty" export:"true"`
		Rule        string     `json:"rule,omitempty" toml:"rule,omitempty" yaml:"rule,omitempty"`
		TLS         *RouterTLS `json:"tls,omitempty" toml:"tls,omitempty" yaml:"tls,omitempty" label:"allowEmpty" file:"allowEmpty" kv:"allowEmpty" export:"true"`
	}
	RouterTLS struct {
		Options string `json:"options,omitempty" toml:"options,omitempty" yaml:"options,omitempty" export:"true"`
	}
	Service struct {
		LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty" toml:"loadBalancer,omitempty" yaml:"loadBalancer,omitempty" export:"true"`
	}
	LoadBalancer struct {
		Servers []Server `json:"servers,omitempty" toml:"servers,omitempty" yaml:"servers,omitempty" label-slice-as-struct:"server" export:"true"`
	}
	Server struct {
		URL string `json:"url,omitempty" toml:"url,omitempty" yaml:"url,omitempty"`
	}
	Middleware struct {
		Plugin map[string]PluginConf `json:"plugin,omitempty" toml:"plugin,omitempty" yaml:"plugin,omitempty" export:"true"`
	}
	// TLSConfig is the part of dynamic.TLSConfiguration (pkg/tls) that asks for client
	// certificates, which certificate-bound tokens need.
	TLSConfig struct {
		Options map[string]TLSOptions `json:"options,omitempty" toml:"options,omitempty" yaml:"options,omitempty" export:"true"`
	}
	TLSOptions struct {
		ClientAuth ClientAuth `json:"clientAuth,omitempty" toml:"clientAuth,omitempty" yaml:"clientAuth,omitempty" export:"true"`
	}
	ClientAuth struct {
		CAFiles        []string `json:"caFiles,omitempty" toml:"caFiles,omitempty" yaml:"caFiles,omitempty"`
		ClientAuthType string   `json:"clientAuthType,omitempty" toml:"clientAuthType,omitempty" yaml:"clientAuthType,omitempty" export:"true"`
	}
	// PluginConf is dynamic.PluginConf: the raw map handed to the plugin loader.
	PluginConf map[string]interface{}
)

// Plugin returns http.middlewares.<middleware>.plugin.<alias>, failing if it is absent.
func (c *Dynamic) Plugin(t testing.TB, middleware, alias string) map[string]interface{} {
	t.Helper()
	if c.HTTP != nil && c.HTTP.Middlewares[middleware] != nil && c.HTTP.Middlewares[middleware].Plugin[alias] != nil {
		return c.HTTP.Middlewares[middleware].Plugin[alias]
	}
	t.Fatalf("the decoded configuration has no http.middlewares.%s.plugin.%s", middleware, alias)
	return nil
}

// DecodeFileProvider decodes a dynamic configuration file as Traefik's file provider does
// (pkg/provider/file/file.go decodeConfiguration). ext is ".yaml" or ".toml".
func DecodeFileProvider(content, ext string) (*Dynamic, error) {
	conf := &Dynamic{HTTP: &HTTP{
		Routers:     map[string]*Router{},
		Services:    map[string]*Service{},
		Middlewares: map[string]*Middleware{},
	}}
	return conf, file.DecodeContent(content, ext, conf)
}

// DecodeLabels decodes container labels as Traefik's docker provider does
// (pkg/provider/docker/config.go → pkg/config/label/label.go DecodeConfiguration).
func DecodeLabels(labels map[string]string) (*Dynamic, error) {
	conf := &Dynamic{HTTP: &HTTP{}}
	return conf, parser.Decode(labels, conf, parser.DefaultRootName, "traefik.http")
}

// PluginLabels spells plugin keys as docker labels of middleware api-auth, alias introspection.
func PluginLabels(keys map[string]string) map[string]string {
	labels := map[string]string{}
	for k, v := range keys {
		labels["traefik.http.middlewares.api-auth.plugin.introspection."+k] = v
	}
	return labels
}

// Keys are plugin keys for endpoint with the README's client credentials, plus extra.
func Keys(endpoint string, extra map[string]string) map[string]string {
	keys := map[string]string{"endpoint": endpoint, "clientId": ClientID, "clientSecret": ClientSecret}
	for k, v := range extra {
		keys[k] = v
	}
	return keys
}

// DecodePluginLabels is the raw plugin map Traefik builds from those labels.
func DecodePluginLabels(t testing.TB, keys map[string]string) map[string]interface{} {
	t.Helper()
	conf, err := DecodeLabels(PluginLabels(keys))
	if err != nil {
		t.Fatalf("decoding the labels: %v", err)
	}
	return conf.Plugin(t, "api-auth", "introspection")
}

// DecodeCRDMiddleware takes spec.plugin of a Middleware resource as Traefik's kubernetes CRD
// provider does: the API server stores it as JSON (apiextensionv1.JSON), and
// createPluginMiddleware (pkg/provider/kubernetes/crd/kubernetes.go) unmarshals that into
// dynamic.PluginConf, so values keep their JSON types.
func DecodeCRDMiddleware(t testing.TB, manifest string) map[string]PluginConf {
	t.Helper()
	var doc interface{}
	if err := yaml.Unmarshal([]byte(manifest), &doc); err != nil {
		t.Fatalf("parsing the Middleware YAML: %v", err)
	}
	asJSON, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("Middleware as JSON: %v", err)
	}
	var resource struct {
		Kind string
		Spec struct {
			Plugin map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(asJSON, &resource); err != nil || resource.Kind != "Middleware" {
		t.Fatalf("not a Middleware resource (kind %q): %v", resource.Kind, err)
	}
	data, err := json.Marshal(resource.Spec.Plugin)
	if err != nil {
		t.Fatalf("spec.plugin as JSON: %v", err)
	}
	plugins := map[string]PluginConf{}
	if err := json.Unmarshal(data, &plugins); err != nil {
		t.Fatalf("spec.plugin: %v", err)
	}
	return plugins
}
