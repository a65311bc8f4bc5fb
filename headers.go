// Headers: the grammar of names and values, the identity headers an admitted request
// carries upstream (claims rendered as header values), and every spelling of them that a
// client could forge, removed from every request.

package introspection

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	// tchars are the characters of an HTTP field name (RFC 9110 §5.6.2).
	tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// controlChars may not appear in the header values this plugin writes (CR/LF split headers).
	controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" +
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
)

// isFieldName reports whether name is an HTTP field name: one or more tchars.
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

// forwardHeader sets header name upstream from claim.
type forwardHeader struct {
	name  string // canonical
	claim string
}

// setForwarding reads what an admitted request carries upstream (forwardHeaders and
// forwardIntrospectionJWT) and lists the spellings of those headers, and of tokenHeader but
// its own, to delete from every request.
func (m *middleware) setForwarding(config *Config) error {
	// The forged headers to delete, by their spoofName: each maps to the one spelling kept,
	// and to the key that named it.
	spoofable, spoofKeys := map[string]string{}, map[string]string{}
	for header, claim := range config.ForwardHeaders {
		switch {
		case !isFieldName(header):
			return fmt.Errorf("forwardHeaders key %q is not a valid header name", header)
		case strings.TrimSpace(claim) == "":
			return fmt.Errorf("forwardHeaders.%s: the claim name is missing", header)
		case spoofName(header) == spoofName(m.tokenHeader):
			return fmt.Errorf("forwardHeaders.%s: the header is the tokenHeader", header)
		}
		m.forwardHeaders = append(m.forwardHeaders, forwardHeader{http.CanonicalHeaderKey(header), strings.TrimSpace(claim)})
		spoofable[spoofName(header)], spoofKeys[spoofName(header)] = "", "forwardHeaders."+header
	}
	if config.ForwardIntrospectionJWT != "" {
		name := config.ForwardIntrospectionJWT
		switch _, taken := spoofable[spoofName(name)]; {
		case config.ResponseFormat != formatJWT:
			return fmt.Errorf("forwardIntrospectionJWT %q needs responseFormat %q: only a signed answer is a JWT", name, formatJWT)
		case !isFieldName(name):
			return fmt.Errorf("forwardIntrospectionJWT %q is not a valid header name", name)
		case spoofName(name) == spoofName(m.tokenHeader):
			return fmt.Errorf("forwardIntrospectionJWT %q is the tokenHeader", name)
		case taken:
			return fmt.Errorf("forwardIntrospectionJWT %q is also in forwardHeaders", name)
		}
		m.forwardJWT = http.CanonicalHeaderKey(name)
		spoofable[spoofName(name)], spoofKeys[spoofName(name)] = "", fmt.Sprintf("forwardIntrospectionJWT %q", name)
	}
	// A backend that reads X_Api_Token as X-Api-Token would see a token nobody checked.
	if m.tokenHeader != "" {
		spoofable[spoofName(m.tokenHeader)], spoofKeys[spoofName(m.tokenHeader)] = m.tokenHeader, fmt.Sprintf("tokenHeader %q", config.TokenHeader)
	}
	for folded, keep := range spoofable {
		if strings.Count(folded, "-") > maxSeparators {
			return fmt.Errorf("%s has more than %d of '-', '_' and '.' in its name: each is a spelling to remove from every request",
				spoofKeys[folded], maxSeparators)
		}
		for _, name := range spellings(folded) {
			if name != keep {
				m.spoofed = append(m.spoofed, name)
			}
		}
	}
	m.edits = len(m.spoofed) > 0 || len(m.forwardHeaders) > 0 || m.forwardJWT != "" || !m.forwardAuthorization
	return nil
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

// claimValue renders a claim for a header: strings as they are, integers in decimal,
// lists joined with ",", objects as compact JSON. A missing or null claim gives nothing, and
// so does a list that the header could not tell apart from another one: one holding a list
// or an object, or an item with a comma, a quote (a quoted-string, RFC 9110 §5.6.4, may
// span commas) or an outer space (["u", "x,admin"] would read as three items, [" a"] as
// "a", RFC 9110 §5.6.1).
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
			if !isScalar(item) {
				return "", false
			}
			s, ok := claimValue(item)
			if !ok {
				continue // null
			}
			if strings.ContainsAny(s, `,"`) || strings.TrimSpace(s) != s {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	}
	data, err := json.Marshal(value)
	if err != nil {
		return "", false
	}
	return string(data), true
}

// isScalar reports whether a claim is neither a list nor an object.
func isScalar(value interface{}) bool {
	_, isList := value.([]interface{})
	_, isObject := value.(map[string]interface{})
	return !isList && !isObject
}
