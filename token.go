// The token: read from the request wherever the configuration says (RFC 6750 §2), checked
// for its form, and removed before the request goes upstream when forwardAuthorization is
// false.

package introspection

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// b64tokenChars are the characters of RFC 6750 §2.1's b64token before its "=" padding.
// Checking with strings.TrimLeft runs compiled under yaegi, a per-byte loop would not.
const b64tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

// bearerHeader is the usual Authorization value, `Bearer <b64token>` (RFC 6750 §2.1):
// checked in one regexp call, which runs compiled under yaegi where the steps below would
// each be interpreted. FuzzExtract checks it agrees with them.
var bearerHeader = regexp.MustCompile(`^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)$`)

// dpopHeader is bearerHeader for the DPoP scheme (RFC 9449 §7.1), whose token has the same
// form.
var dpopHeader = regexp.MustCompile(`^[Dd][Pp][Oo][Pp] +([A-Za-z0-9\-._~+/]+=*)$`)

// extract finds the one token the request carries, or says why it cannot be used, and
// whether it came with the DPoP scheme (RFC 9449 §7.1).
func (m *middleware) extract(req *http.Request) (string, bool, *rejection) {
	if m.bearerOnly {
		if values := req.Header["Authorization"]; len(values) == 1 {
			if match := bearerHeader.FindStringSubmatch(values[0]); match != nil && len(match[1]) <= m.maxTokenLength {
				return match[1], false, nil
			}
			if m.dpopScheme {
				if match := dpopHeader.FindStringSubmatch(values[0]); match != nil && len(match[1]) <= m.maxTokenLength {
					return match[1], true, nil
				}
			}
		}
	}
	return m.extractAny(req)
}

// extractAny reads the token from every source the configuration names; apart from
// extract, so that the usual bearer token does not pay for this frame under yaegi.
func (m *middleware) extractAny(req *http.Request) (string, bool, *rejection) {
	token, found, dpop := "", 0, false

	if m.tokenHeader != "" {
		values := req.Header[m.tokenHeader]
		if len(values) > 1 {
			return "", false, severalTokens
		}
		if len(values) == 1 {
			if t, scheme, ok := m.headerToken(values[0]); ok {
				token, found, dpop = t, found+1, scheme == schemeDPoP
			}
		}
	}

	if m.tokenQuery != nil {
		values, readable := m.tokenQuery.values(req.URL.RawQuery)
		if !readable {
			return "", false, malformedToken
		}
		if len(values) > 1 {
			return "", false, severalTokens
		}
		if len(values) == 1 {
			token, found = values[0], found+1
		}
	}

	if m.tokenCookie != nil {
		values, readable := m.tokenCookie.values(req.Header["Cookie"])
		if !readable {
			return "", false, malformedToken
		}
		if len(values) > 1 {
			return "", false, severalTokens
		}
		if len(values) == 1 {
			token, found = values[0], found+1
		}
	}

	// A refusal still says whether the header used the DPoP scheme: its challenge goes there.
	switch {
	case found == 0:
		return "", false, noToken
	case found > 1:
		return "", dpop, severalTokens
	case len(token) > m.maxTokenLength:
		return "", dpop, tokenTooLong
	case !isB64token(token):
		return "", dpop, malformedToken
	}
	return token, dpop, nil
}

// The schemes of the Authorization header that carry a token: Bearer (RFC 6750 §2.1) and,
// when dpop is not off, DPoP (RFC 9449 §7.1), whose token68 has the same form.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// headerToken reads the token from the token header's value and names its scheme. For
// Authorization the scheme must be Bearer or an accepted DPoP, in any case, then one or
// more spaces (RFC 6750 §2.1, RFC 9110 §11.1); another scheme is not a token of ours at all.
// Any other header holds the bare token, with no scheme.
func (m *middleware) headerToken(value string) (string, string, bool) {
	if !m.bearerScheme {
		return value, "", true
	}
	var scheme string
	switch {
	case len(value) >= len(schemeBearer) && strings.EqualFold(value[:len(schemeBearer)], schemeBearer):
		scheme = schemeBearer
	case m.dpopScheme && len(value) >= len(schemeDPoP) && strings.EqualFold(value[:len(schemeDPoP)], schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", false
	}
	rest := value[len(scheme):]
	if rest == "" {
		return "", scheme, true // "Bearer" and nothing: an empty token, malformed.
	}
	if rest[0] == ' ' {
		return strings.TrimLeft(rest, " "), scheme, true
	}
	if strings.IndexByte(tchars, rest[0]) >= 0 {
		return "", "", false // "Bearerx ..." is another scheme.
	}
	return rest, scheme, true // "Bearer\t...": a token badly separated, malformed.
}

// isB64token reports whether token is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64token(token string) bool {
	padding := strings.TrimLeft(token, b64tokenChars)
	return len(padding) < len(token) && strings.TrimLeft(padding, "=") == ""
}

// removeToken keeps the token from going upstream (forwardAuthorization: false). The query
// and the Cookie header lose only the token: the rest goes on as the client sent it, in
// its order and escaping. Traefik's proxy takes the path and the query it forwards from
// RequestURI, so that changes with the query, its path left as it came.
func (m *middleware) removeToken(req *http.Request) {
	if m.tokenHeader != "" {
		req.Header.Del(m.tokenHeader)
	}
	// The proof names the token (ath) and its key, whatever the scheme: it goes with it.
	delete(req.Header, "Dpop")
	if m.tokenQuery != nil && m.tokenQuery.mayHold(req.URL.RawQuery) {
		if query := m.tokenQuery.without(req.URL.RawQuery); query != req.URL.RawQuery {
			req.URL.RawQuery = query
			req.RequestURI = withQuery(req.RequestURI, query)
		}
	}
	if m.tokenCookie != nil {
		if lines, ok := req.Header["Cookie"]; ok {
			kept := m.tokenCookie.without(lines)
			req.Header.Del("Cookie")
			if len(kept) > 0 {
				req.Header["Cookie"] = kept
			}
		}
	}
}

// The parsers of Go 1.24.12/1.25.6 and later give up past these counts (the GODEBUG
// settings urlmaxqueryparams and httpcookiemaxnum; on in Traefik v3.6, which is go 1.25):
// url.ParseQuery returns nothing past 10000 parameters, Request.Cookies past 3000 cookies.
// The token is read here instead, never through them, so that "the parser gave up" cannot
// read as "no token" while the backend still gets it; past the same counts a request that
// may hold the token is refused.
const (
	maxQueryParams = 10000
	maxCookies     = 3000
)

// queryToken is how the middleware reads its query parameter, the name folded once in New.
type queryToken struct {
	name   string
	folded string // foldKeys(name)
}

func newQueryToken(name string) *queryToken {
	return &queryToken{name: name, folded: foldKeys(name)}
}

// mayHold reports whether the raw query can hold the parameter: its name spelled as it is,
// as foldKeys folds it, or behind an escape ('%' or '+'). Compiled calls, so that the usual
// query costs no more.
func (q *queryToken) mayHold(rawQuery string) bool {
	return strings.ContainsAny(rawQuery, "%+") || strings.Contains(keySeparators.Replace(strings.ToLower(rawQuery)), q.folded)
}

// values returns the parameter's values, read as url.ParseQuery reads them (pieces split on
// '&', key and value unescaped), and false when the query cannot be read for it: past
// maxQueryParams, and whenever a piece that some backend reads as name is not one
// url.ParseQuery reads as name: a value that does not unescape, the name behind a ';'
// (which Go drops and Traefik's proxy turns into '&'), or a key that other parsers fold
// into name (PHP, Rails and Express read "access_token[]" and PHP "access.token" as
// access_token, ASP.NET ignores letter case).
//
// Only compiled calls: an interpreted loop over 10000 pieces would cost each such request
// tens of milliseconds under yaegi.
func (q *queryToken) values(rawQuery string) ([]string, bool) {
	if !q.mayHold(rawQuery) {
		return nil, true
	}
	if strings.Count(rawQuery, "&")+strings.Count(rawQuery, ";") >= maxQueryParams {
		return nil, false
	}
	parsed, _ := url.ParseQuery(rawQuery) // what it cannot read, it drops
	// The keys alone, every piece's, unescaped at once: a bad escape in a key (never in name,
	// New sees to it) leaves the query unreadable.
	keys, err := url.QueryUnescape(queryValuePart.ReplaceAllString(strings.ReplaceAll(rawQuery, ";", "&"), ""))
	if err != nil {
		return nil, false
	}
	folded := "&&" + strings.ReplaceAll(foldKeys(keys), "&", "&&") + "&&"
	if strings.Count(folded, "&"+q.folded+"&") != len(parsed[q.name]) {
		return nil, false
	}
	return parsed[q.name], true
}

// queryValuePart is a piece's '=' and value, up to the next piece.
var queryValuePart = regexp.MustCompile(`=[^&]*`)

// foldKeys folds '&'-separated keys as the most lenient backends read them: letter case
// ignored, '.' and ' ' as '_', leading '_' dropped and an array suffix ("[]", "[x]") cut.
func foldKeys(keys string) string {
	keys = keySeparators.Replace(strings.ToLower(keys))
	keys = arraySuffix.ReplaceAllString(keys, "")
	return leadingUnderscores.ReplaceAllString(keys, "$1")
}

var (
	keySeparators      = strings.NewReplacer(".", "_", " ", "_")
	arraySuffix        = regexp.MustCompile(`\[[^&]*`)
	leadingUnderscores = regexp.MustCompile(`(^|&)_+`)
)

// without is the raw query without the pieces whose key is the parameter's name.
func (q *queryToken) without(rawQuery string) string {
	pieces := strings.Split(rawQuery, "&")
	kept := pieces[:0]
	for _, piece := range pieces {
		key, _, _ := strings.Cut(piece, "=")
		if decoded, err := url.QueryUnescape(key); err != nil || decoded != q.name {
			kept = append(kept, piece)
		}
	}
	return strings.Join(kept, "&")
}

// withQuery is a RequestURI with its query replaced, its path kept as it came.
func withQuery(requestURI, query string) string {
	path, _, _ := strings.Cut(requestURI, "?")
	if query == "" {
		return path
	}
	return path + "?" + query
}

// cookieToken is how the middleware reads its cookie: exact, as Go's readCookies reads
// cookies (pairs split on ';', trimmed, one pair of quotes around the value dropped), and
// lenient, as the most lenient backends find a cookie's name (Python's SimpleCookie splits
// on spaces, old Java containers on ',', ASP.NET ignores letter case, PHP unescapes names).
type cookieToken struct {
	name    string
	lower   string // name in lower case
	exact   *regexp.Regexp
	lenient *regexp.Regexp
}

func newCookieToken(name string) *cookieToken {
	quoted := regexp.QuoteMeta(name)
	return &cookieToken{
		name:    name,
		lower:   strings.ToLower(name),
		exact:   regexp.MustCompile(`(?:^|;)[ \t]*` + quoted + `[ \t]*=([^;]*)`),
		lenient: regexp.MustCompile(`(?i)(?:^|[;,\s])\s*` + quoted + `\s*=`),
	}
}

// values returns the cookie's values over all Cookie lines, and false when they cannot be
// read for it: past maxCookies pairs, where Request.Cookies gives up, or when some backend
// would find the name where the exact reading does not. The value's form is checked by the
// caller, as any token's. Compiled calls, but for the few pairs found.
func (c *cookieToken) values(lines []string) ([]string, bool) {
	named, pairs := false, 0
	for _, line := range lines {
		named = named || strings.Contains(strings.ToLower(line), c.lower) || strings.Contains(line, "%")
		pairs += strings.Count(line, ";") + 1
	}
	if !named {
		return nil, true
	}
	if pairs > maxCookies {
		return nil, false
	}
	var values []string
	for _, line := range lines {
		found := c.exact.FindAllStringSubmatch(line, -1)
		lenient := len(c.lenient.FindAllStringIndex(line, -1))
		if unescaped, err := url.QueryUnescape(line); err == nil {
			if more := len(c.lenient.FindAllStringIndex(unescaped, -1)); more > lenient {
				lenient = more
			}
		}
		if lenient != len(found) {
			return nil, false
		}
		for i := 0; i < len(found); i++ {
			value := strings.Trim(found[i][1], " \t")
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			values = append(values, value)
		}
	}
	return values, true
}

// without is the Cookie lines without the pairs of the cookie; a line left empty goes.
func (c *cookieToken) without(lines []string) []string {
	var kept []string
	for _, line := range lines {
		if !strings.Contains(line, c.name) {
			kept = append(kept, line)
			continue
		}
		pairs := strings.Split(line, ";")
		rest := pairs[:0]
		for _, pair := range pairs {
			if key, _, _ := strings.Cut(pair, "="); strings.Trim(key, " \t") != c.name {
				rest = append(rest, pair)
			}
		}
		if line = strings.TrimLeft(strings.Join(rest, ";"), " \t"); line != "" {
			kept = append(kept, line)
		}
	}
	return kept
}

// unreservedChars are RFC 3986 §2.3's, which a URL carries as they are.
const unreservedChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// setTokenSources reads where the token may come from: tokenHeader, tokenQuery and
// tokenCookie, each off when empty.
func (m *middleware) setTokenSources(config *Config) error {
	if config.TokenHeader != "" {
		if !isFieldName(config.TokenHeader) {
			return fmt.Errorf("tokenHeader %q is not a valid header name", config.TokenHeader)
		}
		m.tokenHeader = http.CanonicalHeaderKey(config.TokenHeader)
		m.bearerScheme = m.tokenHeader == "Authorization"
	}
	m.bearerOnly = m.bearerScheme && config.TokenQuery == "" && config.TokenCookie == ""
	if config.TokenQuery != "" {
		if strings.Trim(config.TokenQuery, unreservedChars) != "" {
			// Nothing to unescape in the name: queryToken compares it with unescaped keys.
			return fmt.Errorf("tokenQuery %q has characters other than letters, digits and -._~", config.TokenQuery)
		}
		m.tokenQuery = newQueryToken(config.TokenQuery)
	}
	if config.TokenCookie != "" {
		if !isFieldName(config.TokenCookie) {
			return fmt.Errorf("tokenCookie %q is not a valid cookie name", config.TokenCookie)
		}
		m.tokenCookie = newCookieToken(config.TokenCookie)
	}
	if m.tokenHeader == "" && m.tokenQuery == nil && m.tokenCookie == nil {
		return errors.New("tokenHeader, tokenQuery and tokenCookie are all missing: the token has nowhere to come from")
	}
	return nil
}
