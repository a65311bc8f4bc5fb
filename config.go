// The configuration: the keys as Traefik decodes them, their defaults, and the checks of
// the keys that New reads before any other step.

package introspection

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the middleware's configuration. Traefik fills it from YAML, TOML, docker labels
// or a CRD, matching names case-insensitively. Durations are strings: Traefik's plugin
// decoder has no duration hook, and docker labels deliver every value as a string. That
// decoder reads the mapstructure tags, so its errors name the key as users write it.
type Config struct {
	Endpoint             string            `json:"endpoint,omitempty" mapstructure:"endpoint"`
	Issuer               string            `json:"issuer,omitempty" mapstructure:"issuer"`
	ClientID             string            `json:"clientId,omitempty" mapstructure:"clientId"`
	ClientSecret         string            `json:"clientSecret,omitempty" mapstructure:"clientSecret"`
	ClientSecretFile     string            `json:"clientSecretFile,omitempty" mapstructure:"clientSecretFile"`
	AuthMethod           string            `json:"authMethod,omitempty" mapstructure:"authMethod"`
	SSLVerify            bool              `json:"sslVerify" mapstructure:"sslVerify"`
	CAFile               string            `json:"caFile,omitempty" mapstructure:"caFile"`
	Timeout              string            `json:"timeout,omitempty" mapstructure:"timeout"`
	TokenTypeHint        string            `json:"tokenTypeHint,omitempty" mapstructure:"tokenTypeHint"`
	Headers              map[string]string `json:"headers,omitempty" mapstructure:"headers"`
	TokenHeader          string            `json:"tokenHeader,omitempty" mapstructure:"tokenHeader"`
	TokenQuery           string            `json:"tokenQuery,omitempty" mapstructure:"tokenQuery"`
	TokenCookie          string            `json:"tokenCookie,omitempty" mapstructure:"tokenCookie"`
	RequiredScopes       []string          `json:"requiredScopes,omitempty" mapstructure:"requiredScopes"`
	Audiences            []string          `json:"audiences,omitempty" mapstructure:"audiences"`
	Issuers              []string          `json:"issuers,omitempty" mapstructure:"issuers"`
	ClockSkew            string            `json:"clockSkew,omitempty" mapstructure:"clockSkew"`
	ForwardHeaders       map[string]string `json:"forwardHeaders,omitempty" mapstructure:"forwardHeaders"`
	ForwardAuthorization bool              `json:"forwardAuthorization" mapstructure:"forwardAuthorization"`
	CacheTTL             string            `json:"cacheTTL,omitempty" mapstructure:"cacheTTL"`
	NegativeCacheTTL     string            `json:"negativeCacheTTL,omitempty" mapstructure:"negativeCacheTTL"`
	CacheSize            int               `json:"cacheSize,omitempty" mapstructure:"cacheSize"`
	StaleIfError         string            `json:"staleIfError,omitempty" mapstructure:"staleIfError"`
	Realm                string            `json:"realm,omitempty" mapstructure:"realm"`
	SkipPreflight        bool              `json:"skipPreflight,omitempty" mapstructure:"skipPreflight"`
	MaxTokenLength       int               `json:"maxTokenLength,omitempty" mapstructure:"maxTokenLength"`
	// Bounds the calls in flight to the endpoint, shared by the instances that share its cache.
	MaxConcurrentIntrospections int    `json:"maxConcurrentIntrospections,omitempty" mapstructure:"maxConcurrentIntrospections"`
	PrivateKeyFile              string `json:"privateKeyFile,omitempty" mapstructure:"privateKeyFile"`
	SigningAlg                  string `json:"signingAlg,omitempty" mapstructure:"signingAlg"`
	KeyID                       string `json:"keyId,omitempty" mapstructure:"keyId"`
	AssertionAudience           string `json:"assertionAudience,omitempty" mapstructure:"assertionAudience"`
	TLSCertFile                 string `json:"tlsCertFile,omitempty" mapstructure:"tlsCertFile"`
	TLSKeyFile                  string `json:"tlsKeyFile,omitempty" mapstructure:"tlsKeyFile"`
	ResponseFormat              string `json:"responseFormat,omitempty" mapstructure:"responseFormat"`
	ResponseKeysFile            string `json:"responseKeysFile,omitempty" mapstructure:"responseKeysFile"`
	ForwardIntrospectionJWT     string `json:"forwardIntrospectionJWT,omitempty" mapstructure:"forwardIntrospectionJWT"`
	Optional                    bool   `json:"optional,omitempty" mapstructure:"optional"`
	// Sender-constrained tokens (RFC 9449, RFC 8705 §3): see binding.go.
	DPoP             string `json:"dpop,omitempty" mapstructure:"dpop"`
	DPoPProofMaxAge  string `json:"dpopProofMaxAge,omitempty" mapstructure:"dpopProofMaxAge"`
	DPoPNonce        bool   `json:"dpopNonce,omitempty" mapstructure:"dpopNonce"`
	CertificateBound string `json:"certificateBound,omitempty" mapstructure:"certificateBound"`
	// Claims rules (claims.go), telling why (rejectlog.go), RFC 9728 metadata (metadata.go).
	Claims           string                 `json:"claims,omitempty" mapstructure:"claims"`
	ErrorDescription bool                   `json:"errorDescription,omitempty" mapstructure:"errorDescription"`
	LogRejections    bool                   `json:"logRejections,omitempty" mapstructure:"logRejections"`
	ResourceMetadata map[string]interface{} `json:"resourceMetadata,omitempty" mapstructure:"resourceMetadata"`
	// The cache shared by replicas, in Redis or Valkey (sharedcache.go, resp.go).
	SharedCache             string `json:"sharedCache,omitempty" mapstructure:"sharedCache"`
	SharedCachePasswordFile string `json:"sharedCachePasswordFile,omitempty" mapstructure:"sharedCachePasswordFile"`
	SharedCacheKeyFile      string `json:"sharedCacheKeyFile,omitempty" mapstructure:"sharedCacheKeyFile"`
	SharedCacheTimeout      string `json:"sharedCacheTimeout,omitempty" mapstructure:"sharedCacheTimeout"`
	SharedCacheCAFile       string `json:"sharedCacheCAFile,omitempty" mapstructure:"sharedCacheCAFile"`
}

// CreateConfig returns the defaults. Maps and slices are new on every call: Traefik's
// decoder reuses and truncates a default slice, which would leak between routers.
func CreateConfig() *Config {
	return &Config{
		AuthMethod:           authBasic,
		SSLVerify:            true,
		Timeout:              "5s",
		TokenTypeHint:        "access_token",
		Headers:              map[string]string{},
		TokenHeader:          "Authorization",
		RequiredScopes:       []string{},
		Audiences:            []string{},
		Issuers:              []string{},
		ClockSkew:            "30s",
		ForwardHeaders:       map[string]string{},
		ForwardAuthorization: true,
		CacheTTL:             "30s",
		NegativeCacheTTL:     "5s",
		CacheSize:            10000,
		StaleIfError:         "0s",
		Realm:                "traefik",
		MaxTokenLength:       8192,
		// One connection per call: 128 calls of 10 ms each are 12,800 new tokens a second,
		// beyond what most authorization servers answer, while a hung endpoint holds no more
		// than 128 requests and sockets.
		MaxConcurrentIntrospections: 128,
		ResponseFormat:              formatJSON,
		DPoP:                        bindingAllowed,
		DPoPProofMaxAge:             "60s",
		CertificateBound:            bindingAllowed,
		ResourceMetadata:            map[string]interface{}{},
		// A round trip on a LAN takes well under a millisecond; past 50 ms the endpoint
		// may as well be asked.
		SharedCacheTimeout: "50ms",
	}
}

// parseEndpoint checks that endpoint is an http or https URL without credentials in it, or
// that issuer is set instead, whose metadata names the endpoint: it returns the URL the
// endpoint is read from.
func parseEndpoint(config *Config) (*url.URL, *discovery, error) {
	switch {
	case config.Issuer == "":
	case config.Endpoint != "":
		return nil, nil, fmt.Errorf("endpoint %q and issuer %q are both set: endpoint names the introspection endpoint, issuer has it "+
			"discovered; keep one", shownURL(config.Endpoint), shownURL(config.Issuer))
	default:
		d, err := newDiscovery(config)
		if err != nil {
			return nil, nil, err
		}
		return httpURL(config.Issuer), d, nil
	}
	endpoint := config.Endpoint
	u := httpURL(endpoint)
	switch {
	case endpoint == "":
		return nil, nil, errors.New("endpoint is missing: the URL of the introspection endpoint, or issuer to discover it")
	case u == nil:
		return nil, nil, fmt.Errorf("endpoint %q is not an http or https URL", shownURL(endpoint))
	case u.User != nil:
		return nil, nil, fmt.Errorf("endpoint %q carries credentials: use clientId and clientSecret", shownURL(endpoint))
	}
	return u, nil, nil
}

// httpURL is raw parsed, if it is an http or https URL with a host.
func httpURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	return u
}

// setDurations reads the duration keys into m, as the int64 nanoseconds the request path
// compares, and returns timeout.
func (m *middleware) setDurations(config *Config) (time.Duration, error) {
	var timeout int64
	durations := []struct {
		key   string
		value string
		into  *int64
	}{
		{"timeout", config.Timeout, &timeout},
		{"clockSkew", config.ClockSkew, &m.clockSkew},
		{"cacheTTL", config.CacheTTL, &m.ttls[activeKind]},
		{"negativeCacheTTL", config.NegativeCacheTTL, &m.ttls[inactiveKind]},
		{"staleIfError", config.StaleIfError, &m.staleIfError},
		{"dpopProofMaxAge", config.DPoPProofMaxAge, &m.proofMaxAge},
	}
	for _, d := range durations {
		duration, err := parseDuration(d.key, d.value)
		if err != nil {
			return 0, err
		}
		*d.into = int64(duration)
	}
	if timeout == 0 {
		return 0, fmt.Errorf("timeout %q must be more than 0", config.Timeout)
	}
	if m.proofMaxAge == 0 {
		return 0, fmt.Errorf("dpopProofMaxAge %q must be more than 0", config.DPoPProofMaxAge)
	}
	return time.Duration(timeout), nil
}

func parseDuration(key, value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s %q is not a duration such as 30s or 5m", key, value)
	case d < 0:
		return 0, fmt.Errorf("%s %q is negative", key, value)
	case d > maxDuration:
		return 0, fmt.Errorf("%s %q is over %s", key, value, maxDuration)
	}
	return d, nil
}

// maxDuration bounds every duration key: near the int64 limit, now plus a duration would
// overflow, and cacheTTL: 2562047h would turn caching off, a huge timeout refuse every
// signed answer. No sane setting comes near a year.
const maxDuration = 365 * 24 * time.Hour

// checkLimits checks the keys that bound a count.
func checkLimits(config *Config) error {
	switch {
	case config.CacheSize < 1:
		return fmt.Errorf("cacheSize %d must be at least 1 (cacheTTL: 0s turns caching off)", config.CacheSize)
	case config.MaxTokenLength < 1:
		return fmt.Errorf("maxTokenLength %d must be at least 1", config.MaxTokenLength)
	case config.MaxConcurrentIntrospections < 1:
		return fmt.Errorf("maxConcurrentIntrospections %d must be at least 1", config.MaxConcurrentIntrospections)
	}
	return nil
}

// cleanList trims the items of a list and drops the empty ones ("a, b" from a label).
func cleanList(list []string) []string {
	cleaned := make([]string, 0, len(list))
	for _, item := range list {
		if item = strings.TrimSpace(item); item != "" {
			cleaned = append(cleaned, item)
		}
	}
	return cleaned
}
