// The RFC 7662 call: the request sent to the endpoint and the reading of its answer, JSON
// or signed (RFC 9701), into what the policy checks.

package introspection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds what is read from the endpoint (golang.org/x/oauth2 uses the same 1 MiB).
const maxResponseBytes = 1 << 20

// introspector is the RFC 7662 client of one middleware instance: its credentials and
// request shape, over an HTTP client shared with every instance that calls the same endpoint.
type introspector struct {
	// The endpoint and the answer keys: from the configuration, or under issuer from the
	// server's metadata (discovery), and then nil.
	server     *serverMetadata
	discovery  *discovery
	host       string // a Host header from `headers`: Go sends req.Host, not Header["Host"]
	client     *http.Client
	timeout    time.Duration
	formSuffix string // everything after the token in the form body, built once
	// Every request's header, built once: the extra headers, Content-Type, Accept and the
	// client_secret_basic credentials.
	header http.Header
	// The keys to check when the endpoint refuses us, for the authMethod.
	credentialKeys string

	// private_key_jwt: a fresh assertion per call (RFC 7523 §3: a jti the server may refuse
	// to see twice, an exp soon after).
	signer            *signer
	clientID          string
	assertionAudience string

	// responseFormat jwt: only answers signed by one of responseKeys, or of the keys at the
	// discovered jwks_uri, are read (RFC 9701).
	signed          bool
	responseKeys    []publicKey
	keysFrom        string   // where the keys are from, for errors
	responseIssuers []string // the issuers key: the answer's iss must be one of them when set
	clockSkew       int64
}

// newIntrospector builds the request shape: the client authentication, the hint, the
// extra headers and the answer's format.
func newIntrospector(config *Config, endpoint *url.URL, discovery *discovery, secret string, timeout time.Duration, clockSkew int64, issuers []string) (*introspector, error) {
	in := &introspector{discovery: discovery, timeout: timeout, header: http.Header{}, clientID: config.ClientID,
		credentialKeys: "clientId, clientSecret and authMethod"}
	form := url.Values{}
	if config.TokenTypeHint != "" {
		form.Set("token_type_hint", config.TokenTypeHint)
	}
	authorization, err := in.authenticate(config, secret, form)
	if err != nil {
		return nil, err
	}
	if len(form) > 0 {
		in.formSuffix = "&" + form.Encode()
	}
	if err := in.setHeaders(config); err != nil {
		return nil, err
	}
	accept, err := in.setResponseFormat(config, endpoint, issuers, clockSkew)
	if err != nil {
		return nil, err
	}
	if discovery == nil {
		in.server = &serverMetadata{endpoint: config.Endpoint, keys: in.responseKeys}
	} else {
		discovery.keys = in.responseKeys // responseKeysFile's, if any: the same for every instance that shares it
	}
	// After the extra headers, which may not replace these.
	in.header.Set("Content-Type", "application/x-www-form-urlencoded")
	in.header.Set("Accept", accept)
	if authorization != "" {
		in.header.Set("Authorization", authorization)
	}
	return in, nil
}

// setHeaders reads the extra headers sent with every call (headers), which may name the
// Host.
func (in *introspector) setHeaders(config *Config) error {
	hostSet := false
	for name, value := range config.Headers {
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case !isFieldName(name):
			return fmt.Errorf("headers key %q is not a valid header name", name)
		case len(in.header[canonical]) > 0 || (canonical == "Host" && hostSet):
			// Which one is sent would depend on the map's order.
			return fmt.Errorf("headers.%s is given twice, in two letter cases", canonical)
		case strings.ContainsAny(value, controlChars):
			return fmt.Errorf("headers.%s has a control character in its value", name)
		case canonical == "Authorization" && config.AuthMethod != authNone:
			return fmt.Errorf("headers.%s would be a second client authentication beside authMethod %q", name, config.AuthMethod)
		case canonical == "Host":
			in.host = value
			hostSet = true
		default:
			in.header.Set(canonical, value)
		}
	}
	return nil
}

// setResponseFormat reads the answer's format and, for a signed one (RFC 9701), what it is
// checked with; it returns the Accept header that asks for that format.
func (in *introspector) setResponseFormat(config *Config, endpoint *url.URL, issuers []string, clockSkew int64) (string, error) {
	switch config.ResponseFormat {
	case formatJSON:
		if config.ResponseKeysFile != "" {
			return "", fmt.Errorf("responseKeysFile %q is only read with responseFormat %q", config.ResponseKeysFile, formatJWT)
		}
		return "application/json", nil
	case formatJWT:
		if config.ClientID == "" {
			return "", fmt.Errorf("clientId is missing: responseFormat %q checks that the signed answer's aud is our clientId", formatJWT)
		}
		if config.ResponseKeysFile == "" && in.discovery == nil {
			return "", fmt.Errorf("responseKeysFile is missing: responseFormat %q checks the answer's signature with its keys "+
				"(or set issuer, to read them at its jwks_uri)", formatJWT)
		}
		// RFC 9701 §5: the answer names no token, so signing alone cannot tell an answer
		// about this token from a fresh one about another, put in its place on the way.
		if plainHTTP(endpoint) {
			key := "endpoint"
			if in.discovery != nil {
				key = "issuer"
			}
			return "", fmt.Errorf("%s %q is plain http: responseFormat %q needs https, since a signed answer does not say "+
				"which token it is about and one for another token could be swapped in on the way", key, shownURL(endpoint.String()), formatJWT)
		}
		in.signed = true
		in.keysFrom = "the keys at the issuer's jwks_uri"
		if config.ResponseKeysFile != "" {
			var err error
			if in.responseKeys, err = readPublicKeys(config.ResponseKeysFile); err != nil {
				return "", err
			}
			in.keysFrom = "responseKeysFile"
		}
		in.responseIssuers = issuers
		in.clockSkew = clockSkew
		// RFC 9701 §4: the Accept header asks for the signed answer.
		return "application/token-introspection+jwt", nil
	}
	return "", fmt.Errorf("responseFormat %q is not %s or %s", config.ResponseFormat, formatJSON, formatJWT)
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

// redactURL is the error of a request to target as it may be logged: Go's error quotes
// the URL, whose query may hold a key.
func redactURL(err error, target string) error {
	if urlErr, ok := err.(*url.Error); ok {
		urlErr.URL = shownURL(target)
	}
	return err
}

// plainHTTP reports whether u is http to another machine than this one, where a network
// lies on the way.
func plainHTTP(u *url.URL) bool {
	return u.Scheme == "http" && !isLoopback(u.Hostname())
}

// isLoopback reports whether host is this machine.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// The response formats: RFC 7662's JSON, or RFC 9701's signed JWT.
const (
	formatJSON = "json"
	formatJWT  = "jwt"
)

const (
	inactiveKind = 0
	activeKind   = 1
)

// result is an introspection answer, checked for shape and reduced to what the policy reads.
type result struct {
	kind    int // inactiveKind or activeKind: indexes per-kind settings such as the TTLs
	active  bool
	refresh bool
	scopes  map[string]bool
	aud     []string
	iss     string
	// exp and nbf in Unix nanoseconds, on the wall clock (judge moves them onto the
	// monotonic one); without them the window is open at that end.
	notAfter  int64
	notBefore int64
	// The claims the routes sharing the cache forward, as their header values; a claim that
	// is absent, null or would not make a valid header value is not here.
	claims map[string]string
	values map[string]claimsValue // what the claims rules read, by key (claims.go)
	signed string                 // responseFormat jwt and forwardIntrospectionJWT: the verified answer
	// When the answer may be cached until, in Unix nanoseconds: its exp (RFC 7662 §4), and
	// a signed answer's own exp if that comes first, so that it is not forwarded past it.
	cacheUntil int64
	// The token's binding, from cnf (RFC 7800 §3.1): the DPoP key's thumbprint (RFC 9449
	// §6.2) and the client certificate's (RFC 8705 §3.1); unknownBinding when cnf binds it
	// by neither, so that no request can show it holds what the token is bound to.
	jkt            string
	x5t            string
	unknownBinding bool
}

// keeping is what an answer keeps beyond the policy's members: what the routes sharing the
// cache read of it (endpointState.wanted).
type keeping struct {
	claims []string // as header values: forwardHeaders', and sub and client_id for logRejections
	keys   []string // as claimsValues: the claims rules'
	signed bool     // the signed answer, for forwardIntrospectionJWT
}

// introspect asks the endpoint about token (RFC 7662 §2.1) at now (Unix ns), and keeps of
// the answer the policy's members and what keep names. Any answer that is not a 200 with
// a JSON object whose "active" is a boolean is an error: never "inactive"; with
// responseFormat jwt, so is any answer not signed as RFC 9701 says.
//
// now is the request path's monotonic clock, wall the Unix time the answer is checked at.
func (in *introspector) introspect(ctx context.Context, token string, now, wall int64, keep keeping) (*result, error) {
	server := in.server
	if in.discovery != nil {
		var err error
		if server, err = in.discovery.get(ctx, now, in.timeout); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()

	// The token goes in the body only, never in the URL (RFC 7662 §4).
	body := "token=" + url.QueryEscape(token) + in.formSuffix
	if in.signer != nil {
		assertion, err := in.assertion(wall)
		if err != nil {
			return nil, fmt.Errorf("signing the client assertion: %w", err)
		}
		body += "&client_assertion=" + assertion // base64url and dots: nothing to escape
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = in.header.Clone() // one call, where setting each header would be several
	if in.host != "" {
		req.Host = in.host
	}

	resp, err := in.client.Do(req)
	if err != nil {
		return nil, redactURL(err, server.endpoint)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the endpoint's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest && isUnsupportedTokenType(data):
		return inactiveResult(), nil
	case resp.StatusCode == http.StatusUnauthorized:
		// RFC 7662 §2.3: a 401 is about us, the caller, not about the token.
		return nil, fmt.Errorf("the endpoint refused our client credentials (401): check %s", in.credentialKeys)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the endpoint answered status %d", resp.StatusCode)
	case len(data) > maxResponseBytes:
		return nil, fmt.Errorf("the endpoint's answer is over %d bytes", maxResponseBytes)
	}
	if in.signed {
		return in.readSigned(ctx, data, server, now, wall, keep)
	}
	return parseResult(data, keep)
}

// readSigned reads a signed answer with server's keys and, when none verifies it and the
// keys are the discovered ones, with those the server has rotated to. Apart from
// introspect, whose every value yaegi v0.16.1 allocates on every call, signed or not.
func (in *introspector) readSigned(ctx context.Context, data []byte, server *serverMetadata, now, wall int64, keep keeping) (*result, error) {
	res, err := in.parseSigned(data, server.keys, wall, keep)
	if errors.Is(err, errNoKey) && in.discovery != nil && in.discovery.wantKeys {
		if rotated := in.discovery.rotated(ctx, server, now, in.timeout); rotated != nil {
			return in.parseSigned(data, rotated.keys, wall, keep)
		}
	}
	return res, err
}

// parseSigned reads an RFC 9701 answer: a JWT of type token-introspection+jwt signed by a
// responseKeys key (§5), issued for us (aud is our client id) just now (iat), whose
// token_introspection member is the RFC 7662 answer. The JWT itself is kept for
// forwardIntrospectionJWT.
func (in *introspector) parseSigned(data []byte, keys []publicKey, now int64, keep keeping) (*result, error) {
	jws := strings.TrimSpace(string(data))
	header, payload, err := verifyJWS(jws, keys)
	if err != nil {
		if errors.Is(err, errNoKey) {
			err = fmt.Errorf("%w in %s", err, in.keysFrom)
		}
		return nil, err
	}
	// RFC 7515 §4.1.9 lets typ drop its "application/" prefix.
	if typ, _ := header["typ"].(string); strings.TrimPrefix(strings.ToLower(typ), "application/") != "token-introspection+jwt" {
		return nil, fmt.Errorf("the signed answer's typ %q is not token-introspection+jwt", typ)
	}
	claims, err := decodeObject(payload)
	if err != nil {
		return nil, err
	}
	iss, _ := claims["iss"].(string)
	switch {
	case iss == "":
		return nil, errors.New(`the signed answer has no "iss"`)
	case len(in.responseIssuers) > 0 && !contains(in.responseIssuers, iss):
		return nil, fmt.Errorf("the signed answer's iss %q is not in issuers", iss)
	case !contains(stringList(claims["aud"]), in.clientID):
		return nil, errors.New(`the signed answer's "aud" is not our clientId`)
	}
	// The answer must be issued during this call, started at now and bounded by timeout,
	// give or take clockSkew and the second iat is rounded to: an older one may be a replay.
	iat, err := numericDate(claims, "iat", math.MinInt64)
	switch {
	case err != nil:
		return nil, err
	case iat == math.MinInt64:
		return nil, errors.New(`the signed answer has no "iat"`)
	case iat < now-in.clockSkew-int64(time.Second) || iat > now+int64(in.timeout)+in.clockSkew:
		return nil, fmt.Errorf("the signed answer's iat is %v off our clock, beyond clockSkew", time.Duration(iat-now))
	}
	exp, err := numericDate(claims, "exp", math.MaxInt64)
	if err != nil || exp < now-in.clockSkew {
		return nil, errors.New(`the signed answer's "exp" has passed`)
	}
	inner, ok := claims["token_introspection"].(map[string]interface{})
	if !ok {
		return nil, errors.New(`the signed answer has no "token_introspection" object`)
	}
	res, err := readResult(inner, keep)
	if err != nil {
		return nil, err
	}
	if exp < res.cacheUntil {
		res.cacheUntil = exp
	}
	if res.active && keep.signed {
		res.signed = jws
	}
	return res, nil
}

// isUnsupportedTokenType spots the 400 some servers answer about a token they cannot read,
// instead of active false: oidc-provider for any token shaped like a JWT, with RFC 7009
// §2.2.1's error code. It is about the token, not an outage; any other 400 is ours.
func isUnsupportedTokenType(data []byte) bool {
	var answer struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(data, &answer) == nil && answer.Error == "unsupported_token_type"
}

// inactiveResult is the answer about a token that is not active: nothing else in it counts.
func inactiveResult() *result {
	return &result{notBefore: math.MinInt64, notAfter: math.MaxInt64, cacheUntil: math.MaxInt64}
}

// parseResult reads an RFC 7662 §2.2 response, keeping what keep names.
func parseResult(data []byte, keep keeping) (*result, error) {
	claims, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	return readResult(claims, keep)
}

// decodeObject reads one JSON object and nothing after it.
func decodeObject(data []byte) (map[string]interface{}, error) {
	var claims map[string]interface{}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber() // keeps large integer claims exact for forwardHeaders
	if err := decoder.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("the endpoint's answer is not a JSON object")
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, errors.New("the endpoint's answer has data after its JSON object")
	}
	return claims, nil
}

// readResult checks an RFC 7662 §2.2 answer's members and reduces it to what the policy
// reads, the header values of keep's claims and the values of its keys; the rest is dropped.
func readResult(claims map[string]interface{}, keep keeping) (*result, error) {
	// Only a JSON true is active; "true", 1, null or nothing is a broken answer (symfony PR #65881).
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New(`the endpoint's answer has no boolean "active"`)
	}
	if !active {
		return inactiveResult(), nil
	}

	res := &result{kind: activeKind, active: true, scopes: map[string]bool{}}
	if len(keep.claims) > 0 {
		res.claims = make(map[string]string, len(keep.claims))
		for _, name := range keep.claims {
			if value, ok := claimValue(claims[name]); ok && !strings.ContainsAny(value, controlChars) {
				res.claims[name] = value
			}
		}
	}
	if len(keep.keys) > 0 {
		res.values = readClaimValues(claims, keep.keys)
	}
	var err error
	if res.notAfter, err = numericDate(claims, "exp", math.MaxInt64); err != nil {
		return nil, err
	}
	if res.notBefore, err = numericDate(claims, "nbf", math.MinInt64); err != nil {
		return nil, err
	}
	res.cacheUntil = res.notAfter
	res.iss, _ = claims["iss"].(string)
	res.aud = stringList(claims["aud"])
	res.refresh = isRefreshToken(claims)
	if cnf := claims["cnf"]; cnf != nil { // a call only then: under yaegi each costs dozens of allocations
		if err := readBinding(cnf, res); err != nil {
			return nil, err
		}
	}
	switch scope := claims["scope"].(type) {
	case string:
		// Separated by SP, and only by SP (RFC 6749 §3.3): "profile\u00a0admin" is one scope.
		for _, s := range strings.Split(scope, " ") {
			if s != "" {
				res.scopes[s] = true
			}
		}
	case []interface{}:
		for _, s := range stringList(scope) {
			res.scopes[s] = true
		}
	}
	return res, nil
}

// readBinding reads the answer's cnf into res. A cnf of the wrong shape is a broken
// answer; a cnf without a member we check binds the token to what we cannot see.
func readBinding(cnf interface{}, res *result) error {
	members, ok := cnf.(map[string]interface{})
	if !ok {
		return errors.New(`the endpoint's answer has a "cnf" that is not an object`)
	}
	jkt, isString := members["jkt"].(string)
	if _, present := members["jkt"]; present && (!isString || jkt == "") {
		return errors.New(`the endpoint's answer has a "cnf.jkt" that is not a thumbprint`)
	}
	x5t, isString := members["x5t#S256"].(string)
	if _, present := members["x5t#S256"]; present && (!isString || x5t == "") {
		return errors.New(`the endpoint's answer has a "cnf.x5t#S256" that is not a thumbprint`)
	}
	res.jkt = jkt
	res.x5t = x5t
	res.unknownBinding = jkt == "" && x5t == "" && len(members) > 0
	return nil
}

// numericDate reads a time claim in seconds since the epoch (RFC 7662 §2.2) and returns it
// in Unix nanoseconds, or absent when there is none. A number in a string is accepted, since
// it is still checked; anything else is a broken answer.
func numericDate(claims map[string]interface{}, name string, absent int64) (int64, error) {
	var text string
	switch v := claims[name].(type) {
	case nil:
		return absent, nil
	case json.Number:
		text = v.String()
	case string:
		text = v
	default:
		return 0, fmt.Errorf("the endpoint's answer has a non-numeric %q", name)
	}
	seconds, err := strconv.ParseFloat(text, 64)
	if err != nil || seconds != seconds || seconds > 1e15 || seconds < -1e15 {
		return 0, fmt.Errorf("the endpoint's answer has a non-numeric %q", name)
	}
	// In nanoseconds, held within ±9e18 (year 2255) so that adding a clock skew cannot overflow.
	if seconds > 9e9 {
		seconds = 9e9
	} else if seconds < -9e9 {
		seconds = -9e9
	}
	return int64(seconds) * int64(time.Second), nil
}

// stringList reads a claim that is a string or a list of strings, like "aud" (RFC 7519 §4.1.3).
func stringList(value interface{}) []string {
	switch v := value.(type) {
	case string:
		return []string{v}
	case []interface{}:
		list := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := item.(string); ok {
				list = append(list, s)
			}
		}
		return list
	}
	return nil
}

// isRefreshToken spots refresh tokens: servers introspect both kinds (RFC 7662 §2.1).
// token_type is RFC 7662's member, token_use is Hydra's, typ is Keycloak's, which says
// "Refresh" for a refresh token and "Offline" for an offline one, a refresh token too.
func isRefreshToken(claims map[string]interface{}) bool {
	for _, name := range tokenKindClaims {
		if kind, _ := claims[name].(string); kind != "" && (strings.EqualFold(kind, "refresh_token") ||
			strings.EqualFold(kind, "refresh") || strings.EqualFold(kind, "offline")) {
			return true
		}
	}
	return false
}

var tokenKindClaims = []string{"token_type", "token_use", "typ"}
