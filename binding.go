// Sender-constrained tokens: which schemes a route accepts (dpop, certificateBound), the
// challenges that say so, and the check that the request proves possession of the key or
// the certificate its token is bound to (RFC 9449 §7.1, RFC 8705 §3). A bound token that
// cannot be checked is refused, whatever the mode: off never means "ignore the binding".

package introspection

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// The values of dpop and certificateBound.
const (
	bindingAllowed  = "allowed"
	bindingRequired = "required"
	bindingOff      = "off" // dpop only
)

// codeInvalidProof is a missing, malformed or unverifiable DPoP proof (RFC 9449 §7.1); the
// refusals that carry it are readProof's (dpop.go) and proofReplayed.
const codeInvalidProof = "invalid_dpop_proof"

var (
	// useNonce asks the client for a proof with the nonce the answer carries (RFC 9449 §9).
	useNonce = &rejection{http.StatusUnauthorized, "use_dpop_nonce", "proof without our nonce"}

	bearerRefused       = &rejection{http.StatusUnauthorized, codeInvalidToken, "DPoP required"}
	bindingUnknown      = &rejection{http.StatusUnauthorized, codeInvalidToken, "binding cannot be checked"}
	notDPoPBound        = &rejection{http.StatusUnauthorized, codeInvalidToken, "token not DPoP-bound"}
	notCertificateBound = &rejection{http.StatusUnauthorized, codeInvalidToken, "token not certificate-bound"}
	proofMissing        = &rejection{http.StatusUnauthorized, codeInvalidToken, "DPoP-bound token without proof"}
	proofKeyMismatch    = &rejection{http.StatusUnauthorized, codeInvalidToken, "proof key mismatch"}
	certificateMismatch = &rejection{http.StatusUnauthorized, codeInvalidToken, "certificate mismatch"}
)

// nonceDescription is RFC 9449 §9's, which clients may show.
const nonceDescription = `error_description="Resource server requires nonce in DPoP proof"`

// setBinding reads dpop, dpopNonce and certificateBound, and builds the challenges: a
// Bearer one unless dpop is required, a DPoP one naming the algorithms when the DPoP
// scheme is accepted (RFC 9449 §7.1). The DPoP scheme lives in the Authorization header
// only, so another tokenHeader leaves it unaccepted.
func (m *middleware) setBinding(config *Config, secret string) error {
	switch config.DPoP {
	case bindingAllowed, bindingRequired, bindingOff:
	default:
		return fmt.Errorf("dpop %q is not one of %s, %s, %s", config.DPoP, bindingAllowed, bindingRequired, bindingOff)
	}
	switch config.CertificateBound {
	case bindingAllowed, bindingRequired:
	default:
		return fmt.Errorf("certificateBound %q is not one of %s, %s", config.CertificateBound, bindingAllowed, bindingRequired)
	}
	m.dpopScheme = config.DPoP != bindingOff && m.bearerScheme
	m.dpopRequired = config.DPoP == bindingRequired
	m.certRequired = config.CertificateBound == bindingRequired
	if m.dpopRequired && (!m.bearerScheme || m.tokenQuery != nil || m.tokenCookie != nil) {
		return fmt.Errorf("dpop %q takes tokens from the Authorization header's DPoP scheme only: tokenHeader %q, tokenQuery %q "+
			"and tokenCookie %q would take tokens no request could use", config.DPoP, config.TokenHeader, config.TokenQuery, config.TokenCookie)
	}
	if config.DPoPNonce {
		if !m.dpopScheme {
			return fmt.Errorf("dpopNonce is set, but dpop %q with tokenHeader %q accepts no DPoP proof", config.DPoP, config.TokenHeader)
		}
		key, err := nonceKey(config, secret)
		if err != nil {
			return err
		}
		// A nonce lasts one to two periods: a quarter of dpopProofMaxAge halves the time in
		// which a proof can be replayed to another replica (its jti memory is its own).
		m.nonces = &nonces{key: key, period: m.proofMaxAge / 4}
		if m.nonces.period == 0 {
			m.nonces.period = 1
		}
	}
	if m.dpopRequired {
		m.challenge = ""
	}
	if m.dpopScheme {
		m.dpopAlgs = `algs="` + strings.Join(verifyingAlgNames, " ") + `"`
		proofsSeen.hold(m.proofMaxAge)
	}
	return nil
}

// confirm checks, for a route's admitting verdict on a bound token or a request with a
// DPoP proof, that the request proves possession: the proof's key is the token's cnf.jkt
// (a DPoP-bound token sent any other way has no proof; a token that is not DPoP-bound sent
// with the DPoP scheme has no key to match), the proof is not a replay, and the TLS
// client certificate is the token's cnf x5t#S256.
func (m *middleware) confirm(req *http.Request, v *verdict, p *proof, wall int64) *rejection {
	if p != nil || v.jkt != "" {
		switch {
		case p == nil:
			return proofMissing
		case v.jkt == "":
			return notDPoPBound
		case p.jkt != v.jkt:
			return proofKeyMismatch
		}
		// Last, once the proof is known good: only admitted proofs take memory. A proof
		// another instance admitted for this very request (two in a chain) is no replay.
		if admitted, _ := req.Context().Value(admittedProof{}).(string); admitted != p.replayKey && !proofsSeen.first(p, wall) {
			return proofReplayed
		}
	}
	if v.x5t != "" && v.x5t != certificateThumbprint(req) {
		return certificateMismatch
	}
	return nil
}

// admittedProof is the request context's key for the replayKey of the proof admitted for
// it, so that an instance further down the chain does not take the same proof for a replay.
type admittedProof struct{}

// certificateThumbprint is the base64url SHA-256 of the DER of the request's TLS client
// certificate (RFC 8705 §3.1), or "" when there is none. Traefik sets req.TLS when the
// entry point's TLS options ask for client certificates (clientAuth).
func certificateThumbprint(req *http.Request) string {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return ""
	}
	sum := sha256.Sum256(req.TLS.PeerCertificates[0].Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
