package introspection

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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
	endpoint   string
	host       string // a Host header from `headers`: Go sends req.Host, not Header["Host"]
	client     *http.Client
	timeout    time.Duration
	formSuffix string // everything after the token in the form body, built once
	// Every request's header, built once: the extra headers, Content-Type, Accept and the
	// client_secret_basic credentials.
	header http.Header
}

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
	// exp and nbf in Unix nanoseconds, like every time the request path compares; without
	// them the window is open at that end.
	notAfter  int64
	notBefore int64
	claims    map[string]interface{}
}

// basicCredentials encodes client_secret_basic: RFC 6749 §2.3.1 form-urlencodes the id
// and the secret before HTTP Basic, which servers decode (a ':' in the id would split it).
func basicCredentials(clientID, clientSecret string) string {
	pair := url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(pair))
}

// newHTTPClient builds the one client an endpoint gets: redirects are never followed,
// since Go re-sends a POST body (the token) on 307/308 (CVE-2023-45289, CVE-2024-45336).
func newHTTPClient(sslVerify bool, roots *x509.CertPool, maxCalls int) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxCalls // one host takes all the calls: each may keep its connection
	transport.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            roots,
		InsecureSkipVerify: !sslVerify, //nolint:gosec // the sslVerify key, on by default
	}
	return &http.Client{
		Transport: transport,
		// Named parameters: yaegi v0.16.1 panics calling a func literal with unnamed ones.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// introspect asks the endpoint about token (RFC 7662 §2.1). Any answer that is not a
// 200 with a JSON object whose "active" is a boolean is an error: never "inactive".
func (in *introspector) introspect(ctx context.Context, token string) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()

	// The token goes in the body only, never in the URL (RFC 7662 §4).
	body := "token=" + url.QueryEscape(token) + in.formSuffix
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = in.header.Clone() // one call, where setting each header would be several
	if in.host != "" {
		req.Host = in.host
	}

	resp, err := in.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the endpoint's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		// RFC 7662 §2.3: a 401 is about us, the caller, not about the token.
		return nil, errors.New("the endpoint refused our client credentials (401): check clientId, clientSecret and authMethod")
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the endpoint answered status %d", resp.StatusCode)
	case len(data) > maxResponseBytes:
		return nil, fmt.Errorf("the endpoint's answer is over %d bytes", maxResponseBytes)
	}
	return parseResult(data)
}

// parseResult reads an RFC 7662 §2.2 response. Members it does not know are kept for
// forwardHeaders and otherwise ignored.
func parseResult(data []byte) (*result, error) {
	var claims map[string]interface{}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber() // keeps large integer claims exact for forwardHeaders
	if err := decoder.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("the endpoint's answer is not a JSON object")
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, errors.New("the endpoint's answer has data after its JSON object")
	}

	// Only a JSON true is active; "true", 1, null or nothing is a broken answer (symfony PR #65881).
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New(`the endpoint's answer has no boolean "active"`)
	}
	if !active {
		return &result{notBefore: math.MinInt64, notAfter: math.MaxInt64}, nil
	}

	res := &result{kind: activeKind, active: true, claims: claims, scopes: map[string]bool{}}
	var err error
	if res.notAfter, err = numericDate(claims, "exp", math.MaxInt64); err != nil {
		return nil, err
	}
	if res.notBefore, err = numericDate(claims, "nbf", math.MinInt64); err != nil {
		return nil, err
	}
	res.iss, _ = claims["iss"].(string)
	res.aud = stringList(claims["aud"])
	res.refresh = isRefreshToken(claims)
	switch scope := claims["scope"].(type) {
	case string:
		for _, s := range strings.Fields(scope) {
			res.scopes[s] = true
		}
	case []interface{}:
		for _, s := range stringList(scope) {
			res.scopes[s] = true
		}
	}
	return res, nil
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
// token_type is RFC 7662's member, token_use is Hydra's, typ is Keycloak's.
func isRefreshToken(claims map[string]interface{}) bool {
	for _, name := range tokenKindClaims {
		if kind, _ := claims[name].(string); kind != "" &&
			(strings.EqualFold(kind, "refresh_token") || strings.EqualFold(kind, "refresh")) {
			return true
		}
	}
	return false
}

var tokenKindClaims = []string{"token_type", "token_use", "typ"}

// claimValue renders a claim for a header: strings as they are, integers in decimal,
// lists joined with ",", objects as compact JSON. A missing or null claim gives nothing.
func claimValue(value interface{}) (string, bool) {
	switch v := value.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		f, err := v.Float64()
		if err != nil {
			return v.String(), true
		}
		if f > -1e18 && f < 1e18 && f == float64(int64(f)) {
			return strconv.FormatInt(int64(f), 10), true
		}
		return strconv.FormatFloat(f, 'f', -1, 64), true
	case []interface{}:
		parts := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := claimValue(item); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), true
	}
	data, err := json.Marshal(value)
	if err != nil {
		return "", false
	}
	return string(data), true
}
