package introspection

import (
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

// extract finds the one token the request carries, or says why it cannot be used.
func (m *middleware) extract(req *http.Request) (string, *rejection) {
	if m.bearerOnly {
		if values := req.Header["Authorization"]; len(values) == 1 {
			if match := bearerHeader.FindStringSubmatch(values[0]); match != nil && len(match[1]) <= m.maxTokenLength {
				return match[1], nil
			}
		}
	}
	return m.extractAny(req)
}

// extractAny reads the token from every source the configuration names; apart from
// extract, so that the usual bearer token does not pay for this frame under yaegi.
func (m *middleware) extractAny(req *http.Request) (string, *rejection) {
	token, found := "", 0

	if m.tokenHeader != "" {
		values := req.Header[m.tokenHeader]
		if len(values) > 1 {
			return "", errInvalidRequest
		}
		if len(values) == 1 {
			if t, ok := m.headerToken(values[0]); ok {
				token, found = t, found+1
			}
		}
	}

	if m.tokenQuery != "" {
		values, readable := queryValues(req.URL.RawQuery, m.tokenQuery)
		if !readable || len(values) > 1 {
			return "", errInvalidRequest
		}
		if len(values) == 1 {
			token, found = values[0], found+1
		}
	}

	if m.tokenCookie != "" {
		values, readable := cookieValues(req.Header["Cookie"], m.tokenCookie)
		if !readable || len(values) > 1 {
			return "", errInvalidRequest
		}
		if len(values) == 1 {
			token, found = values[0], found+1
		}
	}

	switch {
	case found == 0:
		return "", errNoToken
	case found > 1:
		return "", errInvalidRequest
	case len(token) > m.maxTokenLength:
		return "", errInvalidRequest
	case !isB64token(token):
		return "", errInvalidRequest
	}
	return token, nil
}

// headerToken reads the token from the token header's value. For Authorization the
// scheme must be Bearer, in any case, then one or more spaces (RFC 6750 §2.1, RFC 9110 §11.1);
// another scheme is not a bearer token at all. Any other header holds the bare token.
func (m *middleware) headerToken(value string) (string, bool) {
	if !m.bearerScheme {
		return value, true
	}
	if len(value) < len("Bearer") || !strings.EqualFold(value[:len("Bearer")], "Bearer") {
		return "", false
	}
	rest := value[len("Bearer"):]
	if rest == "" {
		return "", true // "Bearer" and nothing: an empty token, malformed.
	}
	if rest[0] == ' ' {
		return strings.TrimLeft(rest, " "), true
	}
	if strings.IndexByte(tchars, rest[0]) >= 0 {
		return "", false // "Bearerx ..." is another scheme.
	}
	return rest, true // "Bearer\t...": a bearer token badly separated, malformed.
}

// isB64token reports whether token is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64token(token string) bool {
	padding := strings.TrimLeft(token, b64tokenChars)
	return len(padding) < len(token) && strings.TrimLeft(padding, "=") == ""
}

// removeToken keeps the token from going upstream (forwardAuthorization: false). The query
// and the Cookie header lose only the token: the rest goes on byte for byte, in its order
// and escaping, as the client sent it.
func (m *middleware) removeToken(req *http.Request) {
	if m.tokenHeader != "" {
		req.Header.Del(m.tokenHeader)
	}
	if m.tokenQuery != "" && mayName(req.URL.RawQuery, m.tokenQuery) {
		req.URL.RawQuery = withoutParam(req.URL.RawQuery, m.tokenQuery)
		req.RequestURI = req.URL.RequestURI()
	}
	if m.tokenCookie != "" {
		if lines, ok := req.Header["Cookie"]; ok {
			kept := withoutCookie(lines, m.tokenCookie)
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

// mayName reports whether the raw query can hold the parameter name: spelled as it is, or
// behind an escape ('%' or '+'). Compiled calls, so that the usual query costs no loop.
func mayName(rawQuery, name string) bool {
	return strings.Contains(rawQuery, name) || strings.ContainsAny(rawQuery, "%+")
}

// queryValues returns the values of the query parameter name, read as url.ParseQuery reads
// them (pieces split on '&', key and value unescaped), and false when the query cannot be
// read for it: too many parameters, a value of name that does not unescape, or name in a
// piece with ';', which Go drops and some backends split on.
func queryValues(rawQuery, name string) ([]string, bool) {
	if !mayName(rawQuery, name) {
		return nil, true
	}
	if strings.Count(rawQuery, "&") >= maxQueryParams {
		return nil, false
	}
	var values []string
	for _, piece := range strings.Split(rawQuery, "&") {
		if strings.IndexByte(piece, ';') >= 0 {
			for _, part := range strings.Split(piece, ";") {
				if key, _ := queryKey(part); key == name {
					return nil, false
				}
			}
			continue
		}
		if key, value := queryKey(piece); key == name {
			decoded, err := url.QueryUnescape(value)
			if err != nil {
				return nil, false
			}
			values = append(values, decoded)
		}
	}
	return values, true
}

// queryKey splits a query piece at its first '=' and unescapes the key; a key that does not
// unescape is "", since name has no '%' of its own (New checks).
func queryKey(piece string) (string, string) {
	key, value, _ := strings.Cut(piece, "=")
	decoded, err := url.QueryUnescape(key)
	if err != nil {
		return "", value
	}
	return decoded, value
}

// withoutParam is the raw query without the pieces whose key is name.
func withoutParam(rawQuery, name string) string {
	pieces := strings.Split(rawQuery, "&")
	kept := pieces[:0]
	for _, piece := range pieces {
		if key, _ := queryKey(piece); key != name {
			kept = append(kept, piece)
		}
	}
	return strings.Join(kept, "&")
}

// cookieValues returns the values of cookie name over all Cookie lines, read as Go's
// readCookies reads them (pairs split on ';', name and value trimmed, one pair of quotes
// around the value dropped), and false past maxCookies pairs, where Request.Cookies gives up.
// The value's form is checked by the caller, as any token's.
func cookieValues(lines []string, name string) ([]string, bool) {
	named, pairs := false, 0
	for _, line := range lines {
		named = named || strings.Contains(line, name)
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
		for _, pair := range strings.Split(line, ";") {
			if key, value := cookiePair(pair); key == name {
				if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				values = append(values, value)
			}
		}
	}
	return values, true
}

// cookiePair splits one "name=value" of a Cookie line, trimmed of spaces and tabs.
func cookiePair(pair string) (string, string) {
	key, value, _ := strings.Cut(pair, "=")
	return strings.Trim(key, " \t"), strings.Trim(value, " \t")
}

// withoutCookie is the Cookie lines without the pairs named name; a line left empty goes.
func withoutCookie(lines []string, name string) []string {
	var kept []string
	for _, line := range lines {
		if !strings.Contains(line, name) {
			kept = append(kept, line)
			continue
		}
		pairs := strings.Split(line, ";")
		rest := pairs[:0]
		for _, pair := range pairs {
			if key, _ := cookiePair(pair); key != name {
				rest = append(rest, pair)
			}
		}
		if line = strings.TrimLeft(strings.Join(rest, ";"), " \t"); line != "" {
			kept = append(kept, line)
		}
	}
	return kept
}
