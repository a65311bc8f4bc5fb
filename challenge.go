// The answers to a refused request: the RFC 6750 §3 challenges, one per refusal and
// reason, and the line logRejections writes (rejectlog.go).

package introspection

import "net/http"

// A rejection is an RFC 6750 §3 answer: a status and, past "no token", an error code
// (§3.1), with the reason: the check that failed, for errorDescription and logRejections.
// A reason names a check, never a value: it reaches clients and logs.
type rejection struct {
	status int
	code   string
	reason string
}

const (
	codeInvalidRequest    = "invalid_request"
	codeInvalidToken      = "invalid_token"
	codeInsufficientScope = "insufficient_scope"
)

var (
	noToken = &rejection{http.StatusUnauthorized, "", "no token"}

	malformedToken = &rejection{http.StatusBadRequest, codeInvalidRequest, "malformed token"}
	severalTokens  = &rejection{http.StatusBadRequest, codeInvalidRequest, "several tokens"}
	tokenTooLong   = &rejection{http.StatusBadRequest, codeInvalidRequest, "token over maxTokenLength"}

	tokenInactive    = &rejection{http.StatusUnauthorized, codeInvalidToken, "token inactive"}
	notAccessToken   = &rejection{http.StatusUnauthorized, codeInvalidToken, "not an access token"}
	tokenExpired     = &rejection{http.StatusUnauthorized, codeInvalidToken, "token expired"}
	tokenNotYetValid = &rejection{http.StatusUnauthorized, codeInvalidToken, "token not yet valid"}
	issuerMismatch   = &rejection{http.StatusUnauthorized, codeInvalidToken, "issuer mismatch"}
	audienceMismatch = &rejection{http.StatusUnauthorized, codeInvalidToken, "audience mismatch"}

	claimsNotMet = &rejection{http.StatusForbidden, codeInsufficientScope, "claims rule not met"}
)

// reject answers with the RFC 6750 §3 challenges: one per accepted scheme, Bearer first,
// the error on the line of the scheme the request used (RFC 9449 §7.1), and the proof's
// errors on the DPoP one. With dpopNonce, use_dpop_nonce comes with a fresh nonce. who is
// the refused answer's sub and client_id, for logRejections.
func (m *middleware) reject(rw http.ResponseWriter, rej *rejection, who string, dpop bool, wall int64) {
	if m.rejections != nil {
		m.rejections.refused(m.name, rej, who, int64(m.now().Sub(monoEpoch)))
	}
	attributes := ""
	if rej.code != "" {
		attributes = `error="` + rej.code + `"`
		switch {
		case rej == useNonce:
			attributes += ", " + nonceDescription
			rw.Header().Set("DPoP-Nonce", m.nonces.issue(wall))
		case m.describe:
			attributes += `, error_description="` + rej.reason + `"`
		}
		if rej.code == codeInsufficientScope {
			attributes += m.scopeAttribute
		}
	}
	onDPoP := dpop || m.challenge == "" || rej.code == codeInvalidProof || rej == useNonce
	var challenges []string
	if m.challenge != "" {
		line := m.challenge
		if attributes != "" && !onDPoP {
			line += ", " + attributes
		}
		challenges = append(challenges, line+m.metadataAttribute)
	}
	if m.dpopAlgs != "" {
		line := "DPoP "
		if attributes != "" && onDPoP {
			line += attributes + ", "
		}
		challenges = append(challenges, line+m.dpopAlgs+m.metadataAttribute)
	}
	rw.Header()["Www-Authenticate"] = challenges
	http.Error(rw, http.StatusText(rej.status), rej.status)
}
