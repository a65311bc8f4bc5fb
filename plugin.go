// Package introspection is a Traefik middleware that admits a request only when its
// bearer token is active at an OAuth2 token introspection endpoint (RFC 7662) and
// satisfies the route's policy, and otherwise answers as RFC 6750 §3 says.
package introspection

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is the middleware's configuration. Traefik fills it from YAML, TOML, docker labels
// or a CRD, matching names case-insensitively. Durations are strings: Traefik's plugin
// decoder has no duration hook, and docker labels deliver every value as a string. That
// decoder reads the mapstructure tags, so its errors name the key as users write it.
type Config struct {
	Endpoint             string            `json:"endpoint,omitempty" mapstructure:"endpoint"`
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
		SigningAlg:                  "RS256",
		ResponseFormat:              formatJSON,
	}
}

// The client authentication methods (RFC 6749 §2.3, RFC 7591 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
	// RFC 7523 §2.2 and RFC 8705 §2.1: a private key or a TLS client certificate instead of a secret.
	authPrivateKeyJWT = "private_key_jwt"
	authTLS           = "tls_client_auth"
)

// The response formats: RFC 7662's JSON, or RFC 9701's signed JWT.
const (
	formatJSON = "json"
	formatJWT  = "jwt"
)

const (
	// unreservedChars are RFC 3986 §2.3's, which a URL carries as they are.
	unreservedChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	// tchars are the characters of an HTTP field name (RFC 9110 §5.6.2).
	tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// controlChars may not appear in the header values this plugin writes (CR/LF split headers).
	controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" +
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
)

// A rejection is an RFC 6750 §3 answer: a status and, past "no token", an error code.
type rejection struct {
	status int
	code   string
}

var (
	errNoToken        = &rejection{http.StatusUnauthorized, ""}
	errInvalidRequest = &rejection{http.StatusBadRequest, "invalid_request"} // malformed, too long, or several tokens
	errInvalidToken   = &rejection{http.StatusUnauthorized, "invalid_token"}
	errMissingScope   = &rejection{http.StatusForbidden, "insufficient_scope"}
)

// forwardHeader sets header name upstream from claim.
type forwardHeader struct {
	name  string // canonical
	claim string
}

// middleware is one configured instance, everything parsed once in New.
type middleware struct {
	next http.Handler
	name string

	tokenHeader          string       // canonical; "" when off
	bearerScheme         bool         // tokenHeader is Authorization
	bearerOnly           bool         // and there is no other source: extract's fast path
	tokenQuery           *queryToken  // nil when off
	tokenCookie          *cookieToken // nil when off
	maxTokenLength       int
	skipPreflight        bool
	forwardAuthorization bool
	optional             bool   // a request without a token passes, anonymous
	forwardJWT           string // canonical forwardIntrospectionJWT; "" when off

	// Durations in nanoseconds, as int64 like the times they are compared with: under yaegi
	// each time.Time or time.Duration method is a call, integer arithmetic is not.
	clockSkew    int64
	staleIfError int64
	// How long this instance reuses a result, by its kind: negativeCacheTTL for inactive,
	// cacheTTL for active. RFC 7662 §4 lets a cache trade freshness (the revocation window)
	// for load.
	ttls [2]int64

	requiredScopes []string
	audiences      []string
	issuers        []string
	forwardHeaders []forwardHeader
	// The inbound headers to delete: every spelling a client can send of the forwardHeaders
	// and forwardIntrospectionJWT, and of the tokenHeader other than its own.
	spoofed []string
	edits   bool // a request that goes on may change: spoofed, forwardHeaders, forwardIntrospectionJWT or forwardAuthorization false

	challenge      string // `Bearer realm="..."`
	scopeChallenge string // the insufficient_scope challenge with its scope attribute

	introspector *introspector
	state        *endpointState
	wants        int // the generation of state's wants that holds what this instance reads
	now          func() time.Time
}

// New checks the configuration and builds the middleware. It makes no network call.
// Errors name the key and the bad value, never a secret.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil {
		return nil, fmt.Errorf("no configuration given")
	}
	m := &middleware{
		next:                 next,
		name:                 name,
		maxTokenLength:       config.MaxTokenLength,
		skipPreflight:        config.SkipPreflight,
		forwardAuthorization: config.ForwardAuthorization,
		optional:             config.Optional,
		audiences:            cleanList(config.Audiences),
		issuers:              cleanList(config.Issuers),
		now:                  time.Now,
	}

	endpoint, err := url.Parse(config.Endpoint)
	switch {
	case config.Endpoint == "":
		return nil, fmt.Errorf("endpoint is required: the URL of the introspection endpoint")
	case err != nil || (endpoint.Scheme != "http" && endpoint.Scheme != "https") || endpoint.Host == "":
		return nil, fmt.Errorf("endpoint %q is not an http or https URL", shownURL(config.Endpoint))
	case endpoint.User != nil:
		return nil, fmt.Errorf("endpoint %q carries credentials: use clientId and clientSecret", shownURL(config.Endpoint))
	}

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
	}
	for _, d := range durations {
		duration, err := parseDuration(d.key, d.value)
		if err != nil {
			return nil, err
		}
		*d.into = int64(duration)
	}
	if timeout == 0 {
		return nil, fmt.Errorf("timeout %q must be more than 0", config.Timeout)
	}
	if config.CacheSize < 1 {
		return nil, fmt.Errorf("cacheSize %d must be at least 1 (cacheTTL: 0s turns caching off)", config.CacheSize)
	}
	if config.MaxTokenLength < 1 {
		return nil, fmt.Errorf("maxTokenLength %d must be at least 1", config.MaxTokenLength)
	}
	if config.MaxConcurrentIntrospections < 1 {
		return nil, fmt.Errorf("maxConcurrentIntrospections %d must be at least 1", config.MaxConcurrentIntrospections)
	}

	if config.TokenHeader != "" {
		if !isFieldName(config.TokenHeader) {
			return nil, fmt.Errorf("tokenHeader %q is not a valid header name", config.TokenHeader)
		}
		m.tokenHeader = http.CanonicalHeaderKey(config.TokenHeader)
		m.bearerScheme = m.tokenHeader == "Authorization"
	}
	m.bearerOnly = m.bearerScheme && config.TokenQuery == "" && config.TokenCookie == ""
	if config.TokenQuery != "" {
		if strings.Trim(config.TokenQuery, unreservedChars) != "" {
			// Nothing to unescape in the name: queryToken compares it with unescaped keys.
			return nil, fmt.Errorf("tokenQuery %q has characters other than letters, digits and -._~", config.TokenQuery)
		}
		m.tokenQuery = newQueryToken(config.TokenQuery)
	}
	if config.TokenCookie != "" {
		if !isFieldName(config.TokenCookie) {
			return nil, fmt.Errorf("tokenCookie %q is not a valid cookie name", config.TokenCookie)
		}
		m.tokenCookie = newCookieToken(config.TokenCookie)
	}
	if m.tokenHeader == "" && m.tokenQuery == nil && m.tokenCookie == nil {
		return nil, fmt.Errorf("tokenHeader, tokenQuery and tokenCookie are all empty: the token has nowhere to come from")
	}

	if !isQuotable(config.Realm) {
		return nil, fmt.Errorf("realm %q has characters a WWW-Authenticate quoted string cannot carry", config.Realm)
	}
	m.challenge = `Bearer realm="` + config.Realm + `"`

	for _, s := range cleanList(config.RequiredScopes) {
		// A list item may be "read write": scopes are separated by SP (RFC 6749 §3.3), and
		// only by SP; any other space is in a scope, and isQuotable refuses it.
		for _, scope := range strings.Split(s, " ") {
			if scope == "" {
				continue
			}
			if !isQuotable(scope) {
				return nil, fmt.Errorf("requiredScopes: %q is not a valid scope", scope)
			}
			m.requiredScopes = append(m.requiredScopes, scope)
		}
	}
	m.scopeChallenge = m.challenge + `, error="insufficient_scope", scope="` + strings.Join(m.requiredScopes, " ") + `"`

	// The forged headers to delete, by their spoofName: each maps to the one spelling kept,
	// and to the key that named it.
	spoofable, spoofKeys := map[string]string{}, map[string]string{}
	for header, claim := range config.ForwardHeaders {
		switch {
		case !isFieldName(header):
			return nil, fmt.Errorf("forwardHeaders: %q is not a valid header name", header)
		case strings.TrimSpace(claim) == "":
			return nil, fmt.Errorf("forwardHeaders.%s: the claim name is empty", header)
		case spoofName(header) == spoofName(m.tokenHeader):
			return nil, fmt.Errorf("forwardHeaders.%s: the header is the tokenHeader", header)
		}
		m.forwardHeaders = append(m.forwardHeaders, forwardHeader{http.CanonicalHeaderKey(header), strings.TrimSpace(claim)})
		spoofable[spoofName(header)], spoofKeys[spoofName(header)] = "", "forwardHeaders: "+header
	}
	if config.ForwardIntrospectionJWT != "" {
		name := config.ForwardIntrospectionJWT
		switch _, taken := spoofable[spoofName(name)]; {
		case config.ResponseFormat != formatJWT:
			return nil, fmt.Errorf("forwardIntrospectionJWT %q needs responseFormat %q: only a signed answer is a JWT", name, formatJWT)
		case !isFieldName(name):
			return nil, fmt.Errorf("forwardIntrospectionJWT %q is not a valid header name", name)
		case spoofName(name) == spoofName(m.tokenHeader):
			return nil, fmt.Errorf("forwardIntrospectionJWT %q is the tokenHeader", name)
		case taken:
			return nil, fmt.Errorf("forwardIntrospectionJWT %q is also in forwardHeaders", name)
		}
		m.forwardJWT = http.CanonicalHeaderKey(name)
		spoofable[spoofName(name)], spoofKeys[spoofName(name)] = "", "forwardIntrospectionJWT "+name
	}
	// A backend that reads X_Api_Token as X-Api-Token would see a token nobody checked.
	if m.tokenHeader != "" {
		spoofable[spoofName(m.tokenHeader)], spoofKeys[spoofName(m.tokenHeader)] = m.tokenHeader, "tokenHeader "+config.TokenHeader
	}
	for folded, keep := range spoofable {
		if strings.Count(folded, "-") > maxSeparators {
			return nil, fmt.Errorf("%s has more than %d of '-', '_' and '.' in its name: each is a spelling to remove from every request",
				spoofKeys[folded], maxSeparators)
		}
		for _, name := range spellings(folded) {
			if name != keep {
				m.spoofed = append(m.spoofed, name)
			}
		}
	}

	secret, err := clientSecret(config)
	if err != nil {
		return nil, err
	}
	tlsConfig, tlsDigest, err := transportTLS(config, endpoint.Scheme == "https")
	if err != nil {
		return nil, err
	}
	m.introspector, err = newIntrospector(config, secret, time.Duration(timeout), m.clockSkew, m.issuers)
	if err != nil {
		return nil, err
	}

	m.edits = len(m.spoofed) > 0 || len(m.forwardHeaders) > 0 || m.forwardJWT != "" || !m.forwardAuthorization

	// Answers are shared by everything that asks the same endpoint as the same client with
	// the same extra headers (a Host or tenant header can select another authorization
	// server behind one URL) and trusts the same answers: a signed one is checked when it
	// arrives, with the keys of responseKeysFile (by what the file holds, not its name) and
	// against issuers. The connections also depend on how TLS is set up. The secret and the
	// private key are left out, so a reload that rotates them starts warm.
	trust := config.ResponseFormat
	if config.ResponseFormat == formatJWT {
		sort.Strings(m.issuers) // only ever searched: sorted, the key does not depend on their order
		trust += "\x00" + keysDigest(m.introspector.responseKeys) + "\x00" + strings.Join(m.issuers, "\n")
	}
	stateKey := config.Endpoint + "\x00" + config.ClientID + "\x00" + headersKey(config.Headers) + "\x00" +
		trust + "\x00" + strconv.FormatBool(config.SSLVerify) + "\x00" + tlsDigest
	m.state = sharedState(ctx, stateKey, config.CacheSize, config.MaxConcurrentIntrospections, func() *http.Client {
		return newHTTPClient(tlsConfig, config.MaxConcurrentIntrospections)
	})
	m.introspector.client = m.state.client
	claims := make([]string, 0, len(m.forwardHeaders))
	for _, h := range m.forwardHeaders {
		claims = append(claims, h.claim)
	}
	m.wants = m.state.want(claims, m.forwardJWT != "")
	return m, nil
}

// missingCredentials names what client authentication lacks, so a misspelled key shows.
func missingCredentials(clientID, secret string) string {
	switch {
	case clientID == "" && secret == "":
		return "clientId and clientSecret are"
	case clientID == "":
		return "clientId is"
	case secret == "":
		return "clientSecret is"
	}
	return ""
}

// secretless checks the configuration of an authMethod that sends no secret and, when
// needsID, names the client by clientId.
func secretless(config *Config, secret string, needsID bool) error {
	if secret != "" {
		return fmt.Errorf("authMethod %q sends no secret, yet clientSecret or clientSecretFile is set", config.AuthMethod)
	}
	if needsID && config.ClientID == "" {
		return fmt.Errorf("clientId is missing: authMethod %q names the client by it", config.AuthMethod)
	}
	return nil
}

// headersKey spells the extra headers the same way whatever their order and letter case.
func headersKey(headers map[string]string) string {
	lines := make([]string, 0, len(headers))
	for name, value := range headers {
		lines = append(lines, http.CanonicalHeaderKey(name)+": "+value)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// newIntrospector builds the request shape: the client authentication, the hint, the
// extra headers and the answer's format. One method per request, never two
// (lua-resty-openidc PR #561).
func newIntrospector(config *Config, secret string, timeout time.Duration, clockSkew int64, issuers []string) (*introspector, error) {
	in := &introspector{endpoint: config.Endpoint, shown: shownURL(config.Endpoint), timeout: timeout, header: http.Header{}, clientID: config.ClientID,
		credentialKeys: "clientId, clientSecret and authMethod"}
	authorization := ""
	form := url.Values{}
	if config.TokenTypeHint != "" {
		form.Set("token_type_hint", config.TokenTypeHint)
	}
	switch config.AuthMethod {
	case authBasic, authPost:
		if missing := missingCredentials(config.ClientID, secret); missing != "" {
			return nil, fmt.Errorf("%s missing: authMethod %q needs clientId and clientSecret (or clientSecretFile); "+
				"an endpoint without client authentication takes authMethod %q", missing, config.AuthMethod, authNone)
		}
		if config.AuthMethod == authBasic {
			authorization = basicCredentials(config.ClientID, secret)
		} else {
			form.Set("client_id", config.ClientID)
			form.Set("client_secret", secret)
		}
	case authPrivateKeyJWT:
		// The client is the assertion's subject; RFC 7521 §4.2 makes client_id unnecessary.
		if err := secretless(config, secret, true); err != nil {
			return nil, err
		}
		if config.PrivateKeyFile == "" {
			return nil, fmt.Errorf("privateKeyFile is missing: authMethod %q signs its assertions with it", authPrivateKeyJWT)
		}
		var err error
		if in.signer, err = newSigner(config.PrivateKeyFile, config.SigningAlg, config.KeyID); err != nil {
			return nil, err
		}
		in.assertionAudience = config.AssertionAudience
		if in.assertionAudience == "" {
			in.assertionAudience = config.Endpoint
		}
		form.Set("client_assertion_type", assertionType) // the assertion itself is new on every call
		in.credentialKeys = "clientId, privateKeyFile, keyId and assertionAudience"
	case authTLS:
		// RFC 8705 §2: the certificate authenticates, client_id says which client it is for.
		if err := secretless(config, secret, true); err != nil {
			return nil, err
		}
		if config.TLSCertFile == "" {
			return nil, fmt.Errorf("tlsCertFile and tlsKeyFile are missing: authMethod %q presents that certificate", authTLS)
		}
		form.Set("client_id", config.ClientID)
		in.credentialKeys = "clientId, tlsCertFile and tlsKeyFile"
	case authNone:
		if err := secretless(config, secret, false); err != nil {
			return nil, err
		}
		if config.ClientID != "" {
			form.Set("client_id", config.ClientID) // a public client names itself (RFC 6749 §3.2.1)
		}
	default:
		return nil, fmt.Errorf("authMethod %q is not one of %s, %s, %s, %s, %s",
			config.AuthMethod, authBasic, authPost, authPrivateKeyJWT, authTLS, authNone)
	}
	if config.PrivateKeyFile != "" && config.AuthMethod != authPrivateKeyJWT {
		return nil, fmt.Errorf("privateKeyFile %q is only read with authMethod %q", config.PrivateKeyFile, authPrivateKeyJWT)
	}
	if len(form) > 0 {
		in.formSuffix = "&" + form.Encode()
	}

	hostSet := false
	for name, value := range config.Headers {
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case !isFieldName(name):
			return nil, fmt.Errorf("headers: %q is not a valid header name", name)
		case len(in.header[canonical]) > 0 || (canonical == "Host" && hostSet):
			// Which one is sent would depend on the map's order.
			return nil, fmt.Errorf("headers: %s is given twice, in two letter cases", canonical)
		case strings.ContainsAny(value, controlChars):
			return nil, fmt.Errorf("headers.%s has a control character in its value", name)
		case canonical == "Authorization" && config.AuthMethod != authNone:
			return nil, fmt.Errorf("headers.%s would be a second client authentication beside authMethod %q", name, config.AuthMethod)
		case canonical == "Host":
			in.host = value
			hostSet = true
		default:
			in.header.Set(canonical, value)
		}
	}
	accept := "application/json"
	switch config.ResponseFormat {
	case formatJSON:
		if config.ResponseKeysFile != "" {
			return nil, fmt.Errorf("responseKeysFile %q is only read with responseFormat %q", config.ResponseKeysFile, formatJWT)
		}
	case formatJWT:
		// RFC 9701 §4: the Accept header asks for the signed answer.
		accept = "application/token-introspection+jwt"
		if config.ClientID == "" {
			return nil, fmt.Errorf("clientId is missing: responseFormat %q checks that the signed answer's aud is our clientId", formatJWT)
		}
		if config.ResponseKeysFile == "" {
			return nil, fmt.Errorf("responseKeysFile is missing: responseFormat %q checks the answer's signature with its keys", formatJWT)
		}
		// RFC 9701 §5: the answer names no token, so signing alone cannot tell an answer
		// about this token from a fresh one about another, put in its place on the way.
		if endpoint, _ := url.Parse(config.Endpoint); endpoint.Scheme == "http" && !isLoopback(endpoint.Hostname()) {
			return nil, fmt.Errorf("endpoint %q is plain http: responseFormat %q needs https, since a signed answer does not say "+
				"which token it is about and one for another token could be swapped in on the way", shownURL(config.Endpoint), formatJWT)
		}
		var err error
		if in.responseKeys, err = readPublicKeys(config.ResponseKeysFile); err != nil {
			return nil, err
		}
		in.responseIssuers = issuers
		in.clockSkew = clockSkew
	default:
		return nil, fmt.Errorf("responseFormat %q is not %s or %s", config.ResponseFormat, formatJSON, formatJWT)
	}

	// After the extra headers, which may not replace these.
	in.header.Set("Content-Type", "application/x-www-form-urlencoded")
	in.header.Set("Accept", accept)
	if authorization != "" {
		in.header.Set("Authorization", authorization)
	}
	return in, nil
}

// clientSecret returns the secret from clientSecret or clientSecretFile, never both.
func clientSecret(config *Config) (string, error) {
	if config.ClientSecretFile == "" {
		return config.ClientSecret, nil
	}
	if config.ClientSecret != "" {
		return "", fmt.Errorf("clientSecret and clientSecretFile %q are both set: keep one", config.ClientSecretFile)
	}
	data, err := os.ReadFile(config.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("clientSecretFile %q: %w", config.ClientSecretFile, err)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("clientSecretFile %q is empty", config.ClientSecretFile)
	}
	return secret, nil
}

// transportTLS is how the endpoint's connections use TLS: the CAs of caFile instead of the
// system's, and the client certificate of tlsCertFile (RFC 8705). The digest tells apart the
// clients of two different bundles or certificates.
func transportTLS(config *Config, https bool) (*tls.Config, string, error) {
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: !config.SSLVerify, // the sslVerify key, on by default
	}
	digest := ""
	if config.CAFile != "" {
		data, err := os.ReadFile(config.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("caFile %q: %w", config.CAFile, err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(data) {
			return nil, "", fmt.Errorf("caFile %q holds no PEM certificate", config.CAFile)
		}
		digest += hexDigest(data)
	}
	digest += "\x00"
	switch {
	case config.TLSCertFile == "" && config.TLSKeyFile == "":
	case config.TLSKeyFile == "":
		return nil, "", fmt.Errorf("tlsCertFile %q is set without tlsKeyFile", config.TLSCertFile)
	case config.TLSCertFile == "":
		return nil, "", fmt.Errorf("tlsKeyFile %q is set without tlsCertFile", config.TLSKeyFile)
	case !https:
		return nil, "", fmt.Errorf("tlsCertFile %q needs an https endpoint to be presented on", config.TLSCertFile)
	default:
		cert, err := tls.LoadX509KeyPair(config.TLSCertFile, config.TLSKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("tlsCertFile %q and tlsKeyFile %q: %w", config.TLSCertFile, config.TLSKeyFile, err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
		digest += hexDigest(cert.Certificate[0])
	}
	return tlsConfig, digest, nil
}

// keysDigest tells apart two sets of response keys by what they are.
func keysDigest(keys []publicKey) string {
	var all []byte
	for _, k := range keys {
		der, _ := x509.MarshalPKIXPublicKey(k.key)
		all = append(all, []byte(k.kid+"\x00"+k.alg+"\x00")...)
		all = append(all, der...)
	}
	return hexDigest(all)
}

func hexDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// shownURL is an endpoint as an error or a log line may show it: a password in it, or a
// key in its query (?api_key=...), is a secret.
func shownURL(endpoint string) string {
	// The userinfo first: a password may hold '?' or '#'.
	if at := strings.LastIndex(endpoint, "@"); at >= 0 {
		endpoint = "<userinfo>@" + endpoint[at+1:]
	}
	if q := strings.IndexAny(endpoint, "?#"); q >= 0 {
		endpoint = endpoint[:q] + "?<redacted>"
	}
	return endpoint
}

// isLoopback reports whether host is this machine, where no network lies on the way.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
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

func isFieldName(name string) bool {
	return name != "" && strings.Trim(name, tchars) == ""
}

// isQuotable reports whether s fits a quoted-string of RFC 6750 §3 without escapes:
// %x20-21 / %x23-5B / %x5D-7E.
func isQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// spoofName folds the spellings a backend may take for one header: Go keeps X_Auth_User and
// X-Auth-User apart, many backends do not (Traefik CVE-2026-33433, oauth2-proxy CVE-2025-64484).
func spoofName(name string) string {
	return spoofFolder.Replace(strings.ToLower(name))
}

var spoofFolder = strings.NewReplacer("_", "-", ".", "-")

// maxSeparators bounds the '-', '_' and '.' in a header the plugin sets or reads the token
// from: a name with n of them has 3^n spellings to delete from every request.
const maxSeparators = 5

// spellings lists every name a client can send that spoofName folds to folded, in the
// canonical form Go's HTTP/1 and HTTP/2 servers give every inbound name (textproto): each
// '-' may be sent as '_' or '.' too, and letter case is the server's.
func spellings(folded string) []string {
	names := []string{""}
	for _, part := range strings.SplitAfter(folded, "-") {
		stem, separated := strings.CutSuffix(part, "-")
		var next []string
		for _, name := range names {
			if !separated {
				next = append(next, name+stem)
				continue
			}
			for _, sep := range []string{"-", "_", "."} {
				next = append(next, name+stem+sep)
			}
		}
		names = next
	}
	for i, name := range names {
		names[i] = http.CanonicalHeaderKey(name)
	}
	return names
}

// ServeHTTP runs the request through the steps in order: find this route's verdict on the
// request's token, then answer with the challenge, or remove forged identity headers, set
// the route's and forward.
//
// A verdict is decided once per token and route and kept with the cached answer, so a
// request whose Authorization header holds a token this route has judged finds it in two
// lookups and checks only its window. Any other request takes verdictFor, which reads the
// token wherever it is, checks its form and decides. The lines here are as few as they
// are on purpose: yaegi v0.16.1 allocates every value a function uses each time it is
// called, so each expression in ServeHTTP costs every request, taken or not.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// A hit needs no check of the token's form: a verdict exists only for a token this route
	// extracted and found well-formed, and the hash is of exactly what follows "Bearer ".
	var v *verdict
	if values := req.Header["Authorization"]; len(values) == 1 && m.bearerOnly {
		if auth := values[0]; len(auth) > len(bearerPrefix) && (auth[:len(bearerPrefix)] == bearerPrefix || strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix)) {
			sum := sha256.Sum256([]byte(auth[len(bearerPrefix):])) // never the token itself (RFC 9700 §4.9.3)
			if found, ok := m.state.cache.entries.Load(string(sum[:])); ok {
				if judged, ok := found.(*entry).verdicts.Load(m); ok {
					now := int64(m.now().Sub(monoEpoch))
					if v = judged.(*verdict); now < v.from || now >= v.until {
						v = nil
					}
				}
			}
		}
	}
	if v == nil {
		if v = m.verdictFor(rw, req); v == nil {
			return
		}
	}

	if v.rej != nil {
		m.reject(rw, v.rej)
		return
	}
	// Go's server writes every inbound name in its canonical form, so the precomputed
	// spellings are all a client can send: deleting them costs the same whatever the request
	// holds. Inline, not a call: under yaegi a call costs more than these lines do on the
	// routes that skip them.
	if m.edits {
		for i := 0; i < len(m.spoofed); i++ {
			delete(req.Header, m.spoofed[i])
		}
		for i := 0; i < len(v.headers); i++ {
			req.Header[v.headers[i].name] = []string{v.headers[i].value}
		}
		if v.removeToken {
			m.removeToken(req)
		}
	}
	m.next.ServeHTTP(rw, req)
}

// bearerPrefix is how nearly every client writes the scheme; any other spelling takes
// verdictFor, which reads the scheme case-insensitively (RFC 6750 §2.1, RFC 9110 §11.1).
const bearerPrefix = "Bearer "

// verdictFor is the request's verdict found the long way: the token read from wherever the
// configuration says (extract), its answer cached or asked for (resolve), judged for this
// route (judge) and kept with a cached answer for the requests that follow. A preflight (skipPreflight) and a request
// without a token (optional) pass unchecked, as anonymous. It answers the request itself and
// returns nil when it is refused before any verdict (a missing or malformed token) or the
// endpoint fails.
func (m *middleware) verdictFor(rw http.ResponseWriter, req *http.Request) *verdict {
	token, rej := m.extract(req)
	if rej != nil {
		// No token: optional makes an anonymous request, whose identity headers are gone, and
		// skipPreflight lets a CORS preflight through unchecked.
		if rej == errNoToken && (m.optional || (m.skipPreflight && isPreflight(req))) {
			return anonymous
		}
		m.reject(rw, rej)
		return nil
	}
	t := m.now()
	now := int64(t.Sub(monoEpoch))
	wall := t.UnixNano()
	sum := sha256.Sum256([]byte(token))
	e, err := m.resolve(req.Context(), token, string(sum[:]), now, wall)
	if err != nil {
		// A request that ended while it waited tells nothing about the endpoint.
		if err != errLeft {
			m.state.failures.failed(m.name, "answering 503", err, now)
		}
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return nil
	}
	v := m.judge(e, now, wall)
	// Kept once the answer is used again after it was cached (the lookup marked it): a
	// kept verdict is what tells the cache's hand the entry is in use. Not for an answer
	// reduced before this instance said what it reads (a reload during the call), nor one
	// served stale: its verdict holds for this request only.
	if e.used.Load() && v.until > now && e.wants >= m.wants {
		e.verdicts.Store(m, v)
	}
	return v
}

// isPreflight spots a CORS preflight: browsers send it without credentials (Fetch
// standard, CORS-preflight request), so an OPTIONS request that carries an Authorization
// header, a cookie or a body is not one, and is checked as any other.
func isPreflight(req *http.Request) bool {
	return req.Method == http.MethodOptions && req.Header.Get("Origin") != "" &&
		req.Header.Get("Access-Control-Request-Method") != "" &&
		len(req.Header["Authorization"]) == 0 && len(req.Header["Cookie"]) == 0 && hasNoBody(req)
}

// hasNoBody reports whether a request comes without a body. Over HTTP/3 the length of a
// request without Content-Length is unknown (-1) even when it has none, as a browser's
// preflight has; a body that a backend would read as a form has a Content-Type.
func hasNoBody(req *http.Request) bool {
	return req.ContentLength == 0 || (req.ProtoMajor == 3 && req.ContentLength == -1 && req.Header.Get("Content-Type") == "")
}

// monoEpoch is the origin of the request path's clock: now is m.now().Sub(monoEpoch),
// nanoseconds on the monotonic clock, so that a step of the wall clock moves no cached
// answer's age (a step back would extend every one, revoked ones too). exp, nbf and iat
// are on the wall clock: they are checked against it when an answer is read or judged, and
// what a verdict keeps of them is moved onto this clock. Where both are needed, one reading
// of m.now gives both, in place: under yaegi a helper would cost a call.
var monoEpoch = time.Now()

// A verdict is what one route decided about one cached answer: admitted with these
// identity headers, or refused; it holds for now in [from, until), within the answer's
// freshness for this route and its exp and nbf give or take clockSkew.
type verdict struct {
	from, until int64
	rej         *rejection
	headers     []identityHeader
	removeToken bool // forwardAuthorization is false
}

// anonymous passes a request without identity; whatever it carries is not a token of ours
// to remove.
var anonymous = &verdict{}

// identityHeader is one header set upstream on an admitted request.
type identityHeader struct {
	name  string
	value string
}

// resolve returns the token's introspection answer: a fresh cached one, or the answer of
// one call shared by every request waiting for the same token.
func (m *middleware) resolve(ctx context.Context, token, key string, now, wall int64) (*entry, error) {
	cached := m.state.cache.get(key, now)
	if cached != nil && m.fresh(cached, now) {
		return cached, nil
	}
	// The call is not cancelled when its own client leaves, since others may wait on it and
	// its answer is cached; the timeout still bounds it.
	callCtx := context.WithoutCancel(ctx)
	e, err := m.state.flight.do(ctx, key, func() (*entry, error) {
		// A call for this token that ended since the lookup above has cached its answer:
		// one call per token, however the herd's requests interleave.
		if again := m.state.cache.get(key, now); again != nil && m.fresh(again, now) {
			return again, nil
		}
		claims, signed, wants := m.state.wanted()
		res, err := m.introspector.introspect(callCtx, token, wall, claims, signed)
		if err != nil {
			return nil, err
		}
		m.state.failures.succeeded(m.name)
		return m.remember(key, res, wants), nil
	})
	// Stale only when the endpoint failed: errBusy is our own bound, which any client can
	// reach with random tokens while the endpoint is well, and errLeft the client's leaving.
	if err != nil && err != errBusy && err != errLeft && cached != nil && cached.res.active && now-cached.storedAt < m.ttls[activeKind]+m.staleIfError {
		m.state.failures.failed(m.name, "serving a cached result (staleIfError)", err, now)
		return cached, nil
	}
	return e, err
}

// fresh reports whether this instance may use a live cached answer at now: within its own
// TTL for the answer's kind, and reduced after the instance said what it reads.
func (m *middleware) fresh(e *entry, now int64) bool {
	return now-e.storedAt < m.ttls[e.res.kind] && e.wants >= m.wants
}

// remember caches res, never beyond its exp (RFC 7662 §4: "MUST NOT be cached beyond") nor
// a signed answer's own exp, and returns its entry, cached or not: an answer over
// maxEntryBytes is used once.
func (m *middleware) remember(key string, res *result, wants int) *entry {
	t := m.now()
	now := int64(t.Sub(monoEpoch))
	wall := t.UnixNano()
	keep := m.ttls[res.kind]
	if res.active {
		keep += m.staleIfError
	}
	e := &entry{key: key, res: res, wants: wants, storedAt: now, deadline: now + keep}
	notAfter := res.notAfter
	if res.answerUntil != 0 && res.answerUntil < notAfter {
		notAfter = res.answerUntil
	}
	if until := addClamped(notAfter, now-wall); until < e.deadline {
		e.deadline = until
	}
	if e.deadline <= now {
		return e
	}
	if entrySize(key, res) <= maxEntryBytes {
		m.state.cache.put(e, now)
	}
	return e
}

// judge applies what every route checks (an active access token within exp and nbf, give
// or take clockSkew, on the wall clock) and then this route's policy to a cached answer at
// now; the verdict's window is on the monotonic clock.
func (m *middleware) judge(e *entry, now, wall int64) *verdict {
	res := e.res
	v := &verdict{from: math.MinInt64, until: e.deadline, rej: errInvalidToken}
	if fresh := e.storedAt + m.ttls[res.kind]; fresh < v.until {
		v.until = fresh
	}
	// Ifs, not a tagless "case a, b:", which yaegi v0.16.1 reads as "case a:".
	if !res.active || res.refresh {
		return v
	}
	// Two statements: yaegi v0.16.1 may leave the second target of a multiple assignment
	// whose first value is a call unset.
	// One sum each, which cannot overflow: clockSkew is at most a year, and now-wall is
	// about minus the Unix time.
	validFrom := addClamped(res.notBefore, now-wall-m.clockSkew)
	validUntil := addClamped(res.notAfter, now-wall+m.clockSkew)
	if now < validFrom {
		if validFrom < v.until {
			v.until = validFrom
		}
		return v
	}
	if now > validUntil {
		v.from = validUntil + 1
		return v
	}
	v.from = validFrom
	if validUntil < v.until {
		v.until = validUntil + 1
	}
	if v.rej = m.checkPolicy(res); v.rej != nil {
		return v
	}
	for _, h := range m.forwardHeaders {
		if value, ok := res.claims[h.claim]; ok {
			v.headers = append(v.headers, identityHeader{h.name, value})
		}
	}
	if m.forwardJWT != "" {
		v.headers = append(v.headers, identityHeader{m.forwardJWT, res.signed})
	}
	v.removeToken = !m.forwardAuthorization
	return v
}

// addClamped is t+d held within int64: exp and nbf may be absent (the int64 limits) or far off.
func addClamped(t, d int64) int64 {
	switch {
	case d > 0 && t > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && t < math.MinInt64-d:
		return math.MinInt64
	}
	return t + d
}

// checkPolicy applies the route's issuers, audiences and scopes to a result. Routes sharing
// the cache may ask for different scopes (Oathkeeper CVE-2021-32701), so it runs once per
// route and answer: a verdict is never shared between routes.
func (m *middleware) checkPolicy(res *result) *rejection {
	if len(m.issuers) > 0 && !contains(m.issuers, res.iss) {
		return errInvalidToken
	}
	if len(m.audiences) > 0 && !containsAny(m.audiences, res.aud) {
		return errInvalidToken
	}
	for _, scope := range m.requiredScopes {
		if !res.scopes[scope] {
			return errMissingScope
		}
	}
	return nil
}

// reject answers with the RFC 6750 §3 challenge.
func (m *middleware) reject(rw http.ResponseWriter, rej *rejection) {
	challenge := m.challenge
	switch {
	case rej == errMissingScope:
		challenge = m.scopeChallenge
	case rej.code != "":
		challenge += `, error="` + rej.code + `"`
	}
	rw.Header().Set("WWW-Authenticate", challenge)
	http.Error(rw, http.StatusText(rej.status), rej.status)
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

func containsAny(list, candidates []string) bool {
	for _, c := range candidates {
		if contains(list, c) {
			return true
		}
	}
	return false
}

// failureLogInterval spaces the lines failureLog writes about one endpoint.
const failureLogInterval = int64(10 * time.Second)

// failureLog reports an endpoint's failures: the first at once, then at most one line per
// failureLogInterval saying how many requests it stands for, and one line when a call
// succeeds again. An outage under load would otherwise write a line per request.
type failureLog struct {
	mu       sync.Mutex
	lastLine int64 // the monotonic now of monoEpoch
	unlogged int   // failed requests since the last line
	total    int   // failed requests since the endpoint last answered
}

// failed reports a request whose introspection failed with err, and what it got instead.
func (l *failureLog) failed(name, outcome string, err error, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.unlogged++
	if l.total > 1 && now-l.lastLine < failureLogInterval {
		return
	}
	more := ""
	if l.unlogged > 1 {
		more = fmt.Sprintf(" (failed requests since the last report: %d)", l.unlogged)
	}
	log.Printf("%s: introspection failed, %s: %v%s", name, outcome, err, more)
	l.lastLine = now
	l.unlogged = 0
}

// succeeded reports a call that got an answer, which ends a run of failures.
func (l *failureLog) succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total == 0 {
		return
	}
	log.Printf("%s: introspection works again (failed requests meanwhile: %d)", name, l.total)
	l.total = 0
	l.unlogged = 0
}
