// The DPoP proof (RFC 9449 §4): read from the request's DPoP header and checked on every
// request that uses the DPoP scheme, before its token is introspected; and the
// server-provided nonces of §9. The memory that refuses a replayed proof is replay.go.

package introspection

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	pathpkg "path"
	"strings"
	"sync"
	"time"
)

// maxProofBytes bounds the DPoP header: a proof is a header with a public key and a few
// claims, under 2 KiB with a 4096-bit RSA key.
const maxProofBytes = 8 << 10

// maxProofRSABits bounds a proof's RSA key: verifying with a 16,000-bit key sent by anyone
// costs 20 ms, with a 4096-bit one 0.4 ms.
const maxProofRSABits = 4096

// dpopTyp is the proof's JOSE typ (RFC 9449 §4.2).
const dpopTyp = "dpop+jwt"

// proof is what a checked DPoP proof tells the rest of the request path.
type proof struct {
	jkt string // the RFC 7638 SHA-256 thumbprint of its key, to match the token's cnf.jkt
	// replayKey names the proof in the jti memory: its key and jti, hashed, so that a long
	// jti costs the memory no more than a short one.
	replayKey string
	iat       int64 // Unix nanoseconds
	// renewNonce: its nonce is from the period before the current one; the answer carries
	// the current one (§9: the server may give a new nonce on any response).
	renewNonce bool
}

// proofClaims are the members of the proof's payload that RFC 9449 §4.2 defines. A member
// of another JSON type fails the decoding, and the proof.
type proofClaims struct {
	JTI   string      `json:"jti"`
	HTM   string      `json:"htm"`
	HTU   string      `json:"htu"`
	IAT   interface{} `json:"iat"` // a JSON number; read by hand, to tell absent from wrong
	ATH   string      `json:"ath"`
	Nonce string      `json:"nonce"`
}

// errProof is wrapped by every reason a proof is refused: the client sees invalid_dpop_proof.
var errProof = errors.New("DPoP proof")

// The refusals of a proof (RFC 9449 §7.1), one per check readProof makes; the error it
// returns beside one says more, with the values, for the tests.
var (
	proofCount      = &rejection{http.StatusUnauthorized, codeInvalidProof, "not one DPoP header"}
	proofTooLarge   = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof over 8 KiB"}
	malformedProof  = &rejection{http.StatusUnauthorized, codeInvalidProof, "malformed proof"}
	proofWithoutJTI = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof without jti"}
	proofHTM        = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof htm mismatch"}
	proofWithoutIAT = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof without iat"}
	proofATH        = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof ath mismatch"}
	proofTooOld     = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof too old"}
	proofAhead      = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof iat in the future"}
	proofHTU        = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof htu mismatch"}
	proofSignature  = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof signature invalid"}
	proofReplayed   = &rejection{http.StatusUnauthorized, codeInvalidProof, "proof replayed"}
)

// unverifiedProof is a proof read (RFC 9449 §4.3 steps 1 to 6: one well-formed JWT, typ
// dpop+jwt, an allowed asymmetric alg, a public jwk that suits it) whose signature is not
// yet checked: its claims are checked against the request first, which costs far less
// than a signature check.
type unverifiedProof struct {
	header *proofHeader
	claims proofClaims
	input  string // the JWS signing input
	sig    []byte
}

// readJWS reads a proof's JWS, its signature unchecked.
func readJWS(jws string) (*unverifiedProof, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w is not a compact JWS", errProof)
	}
	header, err := proofHeaders.read(parts[0])
	if err != nil {
		return nil, err
	}
	payload, payloadOK := canonicalBase64(parts[1])
	sig, sigOK := canonicalBase64(parts[2])
	if !payloadOK || !sigOK {
		return nil, fmt.Errorf("%w is not canonical base64url", errProof)
	}
	u := &unverifiedProof{header: header, input: parts[0] + "." + parts[1], sig: sig}
	if err := json.Unmarshal(payload, &u.claims); err != nil {
		return nil, fmt.Errorf("%w payload is not a JSON object of the right types", errProof)
	}
	return u, nil
}

// verify checks the proof's signature with its jwk (RFC 9449 §4.3 step 7).
func (u *unverifiedProof) verify() error {
	if !verifySignature(u.header.alg, u.header.key, []byte(u.input), u.sig) {
		return fmt.Errorf("%w signature does not verify with its jwk (alg %s)", errProof, u.header.alg.name)
	}
	return nil
}

// proofHeader is a proof's JOSE header, checked: its algorithm, its key and the key's
// thumbprint.
type proofHeader struct {
	alg *jwsAlg
	key interface{}
	jkt string
}

// readProofHeader checks an encoded JOSE header: typ dpop+jwt, an allowed asymmetric alg,
// no crit, and a public jwk that suits the alg.
func readProofHeader(encoded string) (*proofHeader, error) {
	raw, ok := canonicalBase64(encoded)
	if !ok {
		return nil, fmt.Errorf("%w is not canonical base64url", errProof)
	}
	var header struct {
		Typ  string          `json:"typ"`
		Alg  string          `json:"alg"`
		JWK  json.RawMessage `json:"jwk"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		return nil, fmt.Errorf("%w header is not a JSON object of the right types", errProof)
	}
	// RFC 7515 §4.1.9: typ is a media type, case-insensitive.
	if !strings.EqualFold(header.Typ, dpopTyp) {
		return nil, fmt.Errorf("%w typ %q is not %s", errProof, header.Typ, dpopTyp)
	}
	a := jwsAlgNamed(header.Alg)
	if a == nil || a.family == familyHS {
		return nil, fmt.Errorf("%w alg %q is not one of %s", errProof, header.Alg, strings.Join(verifyingAlgNames, ", "))
	}
	if header.Crit != nil {
		return nil, fmt.Errorf("%w has crit extensions", errProof) // RFC 7515 §4.1.11
	}
	key, jkt, err := proofKey(header.JWK)
	if err != nil {
		return nil, err
	}
	return &proofHeader{alg: a, key: key, jkt: jkt}, nil
}

// proofHeaders remembers the headers read lately. A client signs every proof with one key
// and sends the same header bytes with each; reading them (JSON, the key, its thumbprint)
// costs more under yaegi than the signature check, which every proof still gets.
var proofHeaders = &headerMemory{checked: map[string]*proofHeader{}}

// maxProofHeaders bounds the headers remembered: past it, the memory starts again empty.
// A client with a new key per proof only ever takes the long way.
const maxProofHeaders = 1024

type headerMemory struct {
	mu      sync.Mutex
	checked map[string]*proofHeader // encoded header → checked; only good ones
}

// read returns the checked header of encoded, from memory or read now.
func (h *headerMemory) read(encoded string) (*proofHeader, error) {
	h.mu.Lock()
	header := h.checked[encoded]
	h.mu.Unlock()
	if header != nil {
		return header, nil
	}
	header, err := readProofHeader(encoded)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if len(h.checked) >= maxProofHeaders {
		h.checked = map[string]*proofHeader{}
	}
	h.checked[encoded] = header
	h.mu.Unlock()
	return header, nil
}

// proofKey reads the proof's jwk header (RFC 9449 §4.2): a public key of a kind some
// allowed alg verifies with, and returns it with its RFC 7638 thumbprint.
func proofKey(raw json.RawMessage) (interface{}, string, error) {
	var k jwk
	if raw == nil || json.Unmarshal(raw, &k) != nil {
		return nil, "", fmt.Errorf("%w has no jwk object", errProof)
	}
	if member := privateMember(k); member != "" || k.K != nil {
		if member == "" {
			member = "k"
		}
		return nil, "", fmt.Errorf("%w jwk has the private member %q", errProof, member)
	}
	// RFC 7638 §3.2: the required members only, in lexicographic order, no spaces. The
	// encoded ones are checked canonical base64url first, and the curve a known name:
	// nothing in them needs escaping.
	var key interface{}
	var err error
	var members string
	var encoded []string
	switch k.Kty {
	case "RSA":
		key, err = rsaJWK(k)
		members = `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
		encoded = []string{k.E, k.N}
	case "EC":
		key, err = ecJWK(k)
		members = `{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
		encoded = []string{k.X, k.Y}
	case "OKP":
		key, err = okpJWK(k)
		members = `{"crv":"` + k.Crv + `","kty":"OKP","x":"` + k.X + `"}`
		encoded = []string{k.X}
	default:
		return nil, "", fmt.Errorf("%w jwk kty %q is not RSA, EC or OKP", errProof, k.Kty)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w jwk: %v", errProof, err)
	}
	// RSA keys cost more to verify with the more bits they have: a proof's key, which
	// anyone can send, is held to the sizes clients use.
	if rsaKey, isRSA := key.(*rsa.PublicKey); isRSA && rsaKey.N.BitLen() > maxProofRSABits {
		return nil, "", fmt.Errorf("%w jwk is an RSA key of %d bits, over %d", errProof, rsaKey.N.BitLen(), maxProofRSABits)
	}
	for i := 0; i < len(encoded); i++ {
		if _, ok := canonicalBase64(encoded[i]); !ok {
			return nil, "", fmt.Errorf("%w jwk is not canonical base64url", errProof)
		}
	}
	sum := sha256.Sum256([]byte(members))
	return key, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// readProof checks the request's DPoP proof for the token whose SHA-256 is tokenHash, at
// wall (Unix ns): the JWS, its claims against the request (RFC 9449 §4.3 steps 8 to 12),
// its signature, then the nonce. Everything here is judged before the token is
// introspected; the key's match with the token's cnf.jkt and the replay are judged after
// (confirm). The signature comes after the claims: a proof that is stale, for another URL
// or token, costs no signature check.
func (m *middleware) readProof(req *http.Request, tokenHash []byte, wall int64) (*proof, *rejection, error) {
	values := req.Header["Dpop"]
	if len(values) != 1 {
		return nil, proofCount, fmt.Errorf("%w: %d DPoP headers, not one", errProof, len(values))
	}
	if len(values[0]) > maxProofBytes {
		return nil, proofTooLarge, fmt.Errorf("%w is over %d bytes", errProof, maxProofBytes)
	}
	u, err := readJWS(values[0])
	if err != nil {
		return nil, malformedProof, err
	}
	claims := &u.claims
	iat, ok := claims.IAT.(float64)
	switch {
	case claims.JTI == "":
		return nil, proofWithoutJTI, fmt.Errorf("%w has no jti", errProof)
	case claims.HTM != req.Method:
		return nil, proofHTM, fmt.Errorf("%w htm %q is not the method %s", errProof, claims.HTM, req.Method)
	case !ok:
		return nil, proofWithoutIAT, fmt.Errorf("%w has no numeric iat", errProof)
	case claims.ATH != base64.RawURLEncoding.EncodeToString(tokenHash):
		// RFC 9449 §4.2: required with an access token.
		return nil, proofATH, fmt.Errorf("%w has no ath, or not the hash of the access token", errProof)
	}
	// Held within ±9e9 s, as numericDate does, so that nanoseconds cannot overflow.
	if iat > 9e9 {
		iat = 9e9
	} else if iat < -9e9 {
		iat = -9e9
	}
	p := &proof{jkt: u.header.jkt, iat: int64(iat * float64(time.Second))}
	switch {
	case p.iat < wall-m.proofMaxAge:
		return nil, proofTooOld, fmt.Errorf("%w iat is %v old, over dpopProofMaxAge", errProof, time.Duration(wall-p.iat))
	case p.iat > wall+m.clockSkew:
		return nil, proofAhead, fmt.Errorf("%w iat is %v ahead, over clockSkew", errProof, time.Duration(p.iat-wall))
	}
	// The htu a client writes is, most often, the URL as Traefik sees it: normalising both
	// (a parse and a walk of each) only when they differ.
	scheme := requestScheme(req)
	path := req.URL.EscapedPath()
	if claims.HTU != scheme+"://"+req.Host+path {
		if htu, want := proofURL(claims.HTU), normalURL(scheme, req.Host, path); htu != want {
			return nil, proofHTU, fmt.Errorf("%w htu %q is not the request's URL %q", errProof, claims.HTU, want)
		}
	}
	if err := u.verify(); err != nil {
		return nil, proofSignature, err
	}
	if m.nonces != nil {
		fresh, renew := m.nonces.check(claims.Nonce, wall)
		if !fresh {
			return nil, useNonce, fmt.Errorf("%w has no nonce of ours, or a stale one", errProof)
		}
		p.renewNonce = renew
	}
	key := sha256.Sum256([]byte(p.jkt + "." + claims.JTI))
	p.replayKey = string(key[:])
	return p, nil, nil
}

// proofURL is the proof's htu without query and fragment, normalised (RFC 9449 §4.3 step 9),
// or "" when it is not an absolute http or https URL.
func proofURL(htu string) string {
	u := httpURL(htu)
	if u == nil || u.User != nil {
		return ""
	}
	return normalURL(u.Scheme, u.Host, u.EscapedPath())
}

// requestScheme is the scheme of the URL the client sent the request to, as a proof's htu
// names it: https when the connection is TLS or Traefik says the client's was
// (X-Forwarded-Proto, which Traefik sets at the entry point and keeps only from trusted
// proxies), else http. With the Host and the path as this middleware receives it, that is
// the request's URL: a middleware before this one that rewrites the path makes every
// proof's htu wrong.
func requestScheme(req *http.Request) string {
	if req.TLS != nil {
		return "https"
	}
	// wss is https's, as Traefik's own forwarded headers read it.
	if proto := req.Header["X-Forwarded-Proto"]; len(proto) > 0 && (strings.EqualFold(proto[0], "https") || strings.EqualFold(proto[0], "wss")) {
		return "https"
	}
	return "http"
}

// normalURL is scheme://host/path after RFC 3986 §6.2.2 (case and percent-encoding) and
// §6.2.3 (the scheme's default port, "" as "/") normalisation, its dot segments and empty
// ones removed as Traefik removes them.
func normalURL(scheme, host, path string) string {
	scheme = strings.ToLower(scheme)
	host = strings.ToLower(host)
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	host = strings.TrimSuffix(host, ":") // an empty port is the default one (RFC 3986 §3.2.3)
	if strings.IndexByte(path, '%') >= 0 {
		path = normalEscapes(path)
	}
	// Dot segments and repeated slashes go as Traefik's sanitizePath (on by default) takes
	// them out of the request's path before any middleware sees it (URL.JoinPath: the path
	// cleaned, a trailing slash kept): a proof's htu is read the same way.
	if strings.Contains(path, "/.") || strings.Contains(path, "//") {
		cleaned := pathpkg.Clean(path)
		if strings.HasSuffix(path, "/") && !strings.HasSuffix(cleaned, "/") {
			cleaned += "/"
		}
		path = cleaned
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// normalEscapes decodes the escapes of unreserved characters and writes the others in upper
// case (RFC 3986 §6.2.2.1, §6.2.2.2).
func normalEscapes(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c != '%' || i+2 >= len(path) {
			b.WriteByte(c)
			continue
		}
		decoded, err := url.PathUnescape(path[i : i+3])
		if err != nil {
			b.WriteByte(c)
			continue
		}
		if strings.Contains(unreservedChars, decoded) {
			b.WriteString(decoded)
		} else {
			b.WriteString(strings.ToUpper(path[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

// nonces issues and checks the nonces of RFC 9449 §9 without shared state: a nonce is a
// period's number and its HMAC under a key every replica derives from the same
// configuration, so any of them checks another's. A nonce is good in its period and the
// next one: between one and two periods (dpopProofMaxAge) after it is issued.
type nonces struct {
	key    []byte
	period int64
}

// nonceKey derives the key of the nonces from the secret parts of the configuration, which
// every replica shares and no client knows: the client secret or key files and what names
// the server and the client.
func nonceKey(config *Config, secret string) ([]byte, error) {
	material := secret
	for _, path := range []string{config.PrivateKeyFile, config.TLSKeyFile} {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("dpopNonce: reading %q: %w", path, err)
		}
		material += "\x00" + string(data)
	}
	if material == "" {
		return nil, fmt.Errorf("dpopNonce needs a client secret or key (clientSecret, clientSecretFile, privateKeyFile or "+
			"tlsKeyFile) to derive nonces that every replica can check; authMethod %q has none", config.AuthMethod)
	}
	mac := hmac.New(sha256.New, []byte("tokengate DPoP nonce key"))
	mac.Write([]byte(material + "\x00" + config.Endpoint + "\x00" + config.Issuer + "\x00" + config.ClientID))
	return mac.Sum(nil), nil
}

// issue returns the nonce of the period wall is in.
func (n *nonces) issue(wall int64) string {
	return n.make(wall / n.period)
}

func (n *nonces) make(period int64) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(period))
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(b)[:24])
}

// check reports whether nonce is one of ours, of this period or the last, and whether it is
// the last one's.
func (n *nonces) check(nonce string, wall int64) (bool, bool) {
	current := wall / n.period
	raw, ok := canonicalBase64(nonce)
	if !ok || len(raw) != 24 {
		return false, false
	}
	period := int64(binary.BigEndian.Uint64(raw[:8]))
	if (period != current && period != current-1) || !hmac.Equal([]byte(n.make(period)), []byte(nonce)) {
		return false, false
	}
	return true, period != current
}
