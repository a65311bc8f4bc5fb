package introspection

import (
	"net/http"
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
		if values, ok := req.URL.Query()[m.tokenQuery]; ok {
			if len(values) > 1 {
				return "", errInvalidRequest
			}
			token, found = values[0], found+1
		}
	}

	if m.tokenCookie != "" {
		for _, c := range req.Cookies() {
			if c.Name == m.tokenCookie {
				token, found = c.Value, found+1
			}
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

// removeToken keeps the token from going upstream (forwardAuthorization: false).
func (m *middleware) removeToken(req *http.Request) {
	if m.tokenHeader != "" {
		req.Header.Del(m.tokenHeader)
	}
	if m.tokenQuery != "" {
		query := req.URL.Query()
		if _, ok := query[m.tokenQuery]; ok {
			query.Del(m.tokenQuery)
			req.URL.RawQuery = query.Encode()
			req.RequestURI = req.URL.RequestURI()
		}
	}
	if m.tokenCookie != "" {
		cookies := req.Cookies()
		kept := make([]string, 0, len(cookies))
		for _, c := range cookies {
			if c.Name != m.tokenCookie {
				kept = append(kept, c.String())
			}
		}
		req.Header.Del("Cookie")
		if len(kept) > 0 {
			req.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	}
}
