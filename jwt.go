// JSON Web Signatures in compact form (RFC 7515): signing the private_key_jwt and
// client_secret_jwt client assertions (RFC 7523) and verifying the signed introspection
// answer (RFC 9701) and the DPoP proof (RFC 9449). Keys come from files read once in New,
// from the server's jwks_uri, or from the proof itself.
// Algorithms are an allow-list (RFC 8725 §3.1): never "none", and HMAC only to sign with
// the client secret, never to verify, since an attacker could take its key to be a public
// key.

package introspection

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for crypto.Hash.New
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// jwsAlg is one algorithm of RFC 7518 §3.1 the plugin signs or verifies with. Signing,
// verification, the key checks and the error messages that list algorithms or curves all
// read jwsAlgs, so an algorithm is added or dropped in one line.
type jwsAlg struct {
	name      string // the JOSE header's "alg"
	hash      crypto.Hash
	family    string         // familyHS, familyRS, familyPS, familyES or familyEd
	curve     elliptic.Curve // familyES: the curve the key must be on (RFC 7518 §3.4); nil for RSA
	assertion bool           // may be the signingAlg of a client assertion
}

// The families of RFC 7518 §3.2 to §3.5, the first two letters of their algorithms' names.
const (
	familyHS = "HS" // HMAC: client_secret_jwt signs with the client secret; never verified
	familyRS = "RS" // RSASSA-PKCS1-v1_5
	familyPS = "PS" // RSASSA-PSS
	familyES = "ES" // ECDSA
	familyEd = "Ed" // EdDSA (RFC 8037), with Ed25519 keys only: it hashes the message itself
)

// jwsAlgs are the algorithms, in the order error messages list them. A signed answer and a
// DPoP proof may carry any but the HMAC ones; a client assertion is signed with those
// marked assertion: the HMAC ones for client_secret_jwt, the others for private_key_jwt.
var jwsAlgs = []jwsAlg{
	{name: "HS256", hash: crypto.SHA256, family: familyHS, assertion: true},
	{name: "HS384", hash: crypto.SHA384, family: familyHS, assertion: true},
	{name: "HS512", hash: crypto.SHA512, family: familyHS, assertion: true},
	{name: "RS256", hash: crypto.SHA256, family: familyRS, assertion: true},
	{name: "RS384", hash: crypto.SHA384, family: familyRS},
	{name: "RS512", hash: crypto.SHA512, family: familyRS},
	{name: "PS256", hash: crypto.SHA256, family: familyPS, assertion: true},
	{name: "PS384", hash: crypto.SHA384, family: familyPS},
	{name: "PS512", hash: crypto.SHA512, family: familyPS},
	{name: "ES256", hash: crypto.SHA256, family: familyES, curve: elliptic.P256(), assertion: true},
	{name: "ES384", hash: crypto.SHA384, family: familyES, curve: elliptic.P384()},
	{name: "ES512", hash: crypto.SHA512, family: familyES, curve: elliptic.P521()},
	{name: "EdDSA", family: familyEd},
}

// jwsAlgNamed is the entry of jwsAlgs called name, or nil.
func jwsAlgNamed(name string) *jwsAlg {
	for i := 0; i < len(jwsAlgs); i++ {
		if jwsAlgs[i].name == name {
			return &jwsAlgs[i]
		}
	}
	return nil
}

// verifyingAlgNames are the algorithms a signature is checked with, all but HMAC's: ECDSA
// first, the smallest and quickest, as the DPoP challenge's algs lists them.
var verifyingAlgNames = verifyingAlgs()

func verifyingAlgs() []string {
	var names []string
	for _, family := range []string{familyES, familyPS, familyRS, familyEd} {
		for i := 0; i < len(jwsAlgs); i++ {
			if jwsAlgs[i].family == family {
				names = append(names, jwsAlgs[i].name)
			}
		}
	}
	return names
}

// assertionAlgs names the algorithms signingAlg may be: the HMAC ones when secretKeyed
// (client_secret_jwt), else those that sign with a private key (private_key_jwt).
func assertionAlgs(secretKeyed bool) []string {
	var names []string
	for i := 0; i < len(jwsAlgs); i++ {
		if jwsAlgs[i].signs(secretKeyed) {
			names = append(names, jwsAlgs[i].name)
		}
	}
	return names
}

// signs reports whether a may sign the assertions of client_secret_jwt (secretKeyed) or of
// private_key_jwt.
func (a *jwsAlg) signs(secretKeyed bool) bool {
	return a.assertion && (a.family == familyHS) == secretKeyed
}

// keyKind says which key a signs with, for error messages.
func (a *jwsAlg) keyKind() string {
	if a.family == familyES {
		return "an EC " + a.curve.Params().Name + " key"
	}
	return "an RSA key"
}

// curveNamed is the curve a JWK's "crv" names (RFC 7518 §6.2.1.1), or nil when no
// algorithm uses it.
func curveNamed(name string) elliptic.Curve {
	for i := 0; i < len(jwsAlgs); i++ {
		if c := jwsAlgs[i].curve; c != nil && c.Params().Name == name {
			return c
		}
	}
	return nil
}

// curveNames names the curves of the ECDSA algorithms.
func curveNames() []string {
	var names []string
	for i := 0; i < len(jwsAlgs); i++ {
		if c := jwsAlgs[i].curve; c != nil {
			names = append(names, c.Params().Name)
		}
	}
	return names
}

// minRSABits is the smallest RSA key RFC 7518 §3.3 allows.
const minRSABits = 2048

// signer makes client assertions with one private key, or with the client secret.
type signer struct {
	alg    *jwsAlg
	header string // the encoded JOSE header, the same on every assertion
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	secret []byte // familyHS
}

// assertionAlg is the entry of jwsAlgs signingAlg names, if it may sign the assertions of
// authMethod.
func assertionAlg(alg, authMethod string) (*jwsAlg, error) {
	secretKeyed := authMethod == authSecretJWT
	if a := jwsAlgNamed(alg); a != nil && a.signs(secretKeyed) {
		return a, nil
	}
	return nil, fmt.Errorf("signingAlg %q is not one of %s (for authMethod %q)", alg, strings.Join(assertionAlgs(secretKeyed), ", "), authMethod)
}

// newSecretSigner signs client_secret_jwt assertions with HMAC keyed by the client secret,
// which RFC 7518 §3.2 wants at least as long as the hash.
func newSecretSigner(secret, alg, kid string) (*signer, error) {
	a, err := assertionAlg(alg, authSecretJWT)
	if err != nil {
		return nil, err
	}
	if len(secret) < a.hash.Size() {
		return nil, fmt.Errorf("clientSecret is %d bytes long: signingAlg %q needs a key of %d bytes or more (RFC 7518 §3.2)", len(secret), alg, a.hash.Size())
	}
	return &signer{alg: a, header: assertionHeader(alg, kid), secret: []byte(secret)}, nil
}

// newSigner reads the private key in path (PKCS #1, PKCS #8 or SEC 1 PEM) and checks that
// it suits alg: RSA of 2048 bits or more for the RSA algorithms, the algorithm's curve for
// ECDSA.
func newSigner(path, alg, kid string) (*signer, error) {
	a, err := assertionAlg(alg, authPrivateKeyJWT)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("privateKeyFile %q: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("privateKeyFile %q holds no PEM block", path)
	}
	var key interface{}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("privateKeyFile %q holds a %q block, not a private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("privateKeyFile %q: %w", path, err)
	}

	s := &signer{alg: a}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if a.family == familyES {
			return nil, fmt.Errorf("privateKeyFile %q holds an RSA key; signingAlg %q needs %s", path, alg, a.keyKind())
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("privateKeyFile %q holds a %d-bit RSA key; signingAlg %q needs %d bits or more", path, k.N.BitLen(), alg, minRSABits)
		}
		s.rsa = k
	case *ecdsa.PrivateKey:
		if a.family != familyES || k.Curve != a.curve {
			return nil, fmt.Errorf("privateKeyFile %q holds an EC %s key; signingAlg %q needs %s", path, k.Curve.Params().Name, alg, a.keyKind())
		}
		s.ec = k
	default:
		return nil, fmt.Errorf("privateKeyFile %q holds neither an RSA nor an EC key", path)
	}

	s.header = assertionHeader(alg, kid)
	return s, nil
}

// assertionHeader is the encoded JOSE header of every assertion signed with alg.
func assertionHeader(alg, kid string) string {
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	encoded, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(encoded)
}

// sign returns the compact JWS of claims.
func (s *signer) sign(claims map[string]interface{}) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := s.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	if s.alg.family == familyHS {
		mac := hmac.New(s.alg.hash.New, s.secret) // a compiled method value: no interpreted code per block
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
	}
	h := s.alg.hash.New()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	var sig []byte
	switch s.alg.family {
	case familyRS:
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, s.alg.hash, digest)
	case familyPS:
		// RFC 7518 §3.5: the salt is as long as the hash.
		sig, err = rsa.SignPSS(rand.Reader, s.rsa, s.alg.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case familyES:
		sig, err = signECDSA(s.ec, digest)
	}
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// signECDSA gives the JWS form of an ECDSA signature: R and S as big-endian numbers of
// the curve's size each (32 bytes for P-256, 48 for P-384, 66 for P-521), not ASN.1
// (RFC 7518 §3.4).
func signECDSA(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		return nil, err
	}
	size := ecSize(key.Curve)
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return sig, nil
}

// ecSize is the size in bytes of R and of S in a JWS signature on curve.
func ecSize(curve elliptic.Curve) int {
	return (curve.Params().BitSize + 7) / 8
}

// randomID is a fresh jti: 128 random bits.
func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// publicKey is a key a signed answer may be checked with. kid and alg are "" when the key
// file does not pin them.
type publicKey struct {
	kid string
	alg string
	key interface{} // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// readPublicKeys reads responseKeysFile: a JWK Set, a single JWK, or PEM public keys and
// certificates. Keys for encryption and symmetric keys are skipped, never used.
func readPublicKeys(path string) ([]publicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("responseKeysFile %q: %w", path, err)
	}
	var keys []publicKey
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "{") {
		keys, err = jwkSet([]byte(trimmed))
	} else {
		keys, err = pemPublicKeys(data)
	}
	if err != nil {
		return nil, fmt.Errorf("responseKeysFile %q: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("responseKeysFile %q holds no RSA, EC or Ed25519 public key for signatures", path)
	}
	return keys, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, RFC 7518 §6) the plugin reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// The private members (RFC 7518 §6.2.2, §6.3.2), read only to refuse the key: any
	// type, so that a malformed one is refused too.
	D   interface{} `json:"d"`
	P   interface{} `json:"p"`
	Q   interface{} `json:"q"`
	DP  interface{} `json:"dp"`
	DQ  interface{} `json:"dq"`
	QI  interface{} `json:"qi"`
	Oth interface{} `json:"oth"`
	// A symmetric key's secret (RFC 7518 §6.4.1): a JWK Set's symmetric keys are skipped,
	// a DPoP proof's jwk with one is refused.
	K interface{} `json:"k"`
}

// privateMember names a private member of k, or is "" for a public key.
func privateMember(k jwk) string {
	switch {
	case k.D != nil:
		return "d"
	case k.P != nil:
		return "p"
	case k.Q != nil:
		return "q"
	case k.DP != nil:
		return "dp"
	case k.DQ != nil:
		return "dq"
	case k.QI != nil:
		return "qi"
	case k.Oth != nil:
		return "oth"
	}
	return ""
}

func jwkSet(data []byte) ([]publicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("is neither a JWK Set nor a JWK")
	}
	if set.Keys == nil { // a single JWK
		var one jwk
		if err := json.Unmarshal(data, &one); err != nil || one.Kty == "" {
			return nil, errors.New("is neither a JWK Set nor a JWK")
		}
		set.Keys = []jwk{one}
	}
	keys := make([]publicKey, 0, len(set.Keys))
	for i := 0; i < len(set.Keys); i++ {
		k := set.Keys[i]
		// Before the skips: a private key of any use or type in the file is a secret spread.
		if member := privateMember(k); member != "" {
			return nil, fmt.Errorf("key %d (kid %q) is a private key (it has %q): give the public key only", i, k.Kid, member)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key interface{}
		var err error
		switch k.Kty {
		case "RSA":
			key, err = rsaJWK(k)
		case "EC":
			key, err = ecJWK(k)
		case "OKP":
			if k.Crv != "Ed25519" {
				continue // X25519 keys agree on secrets, Ed448 signs nothing here: never a key for an answer
			}
			key, err = okpJWK(k)
		default:
			continue // "oct" and the rest: never a key for an answer
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err)
		}
		keys = append(keys, publicKey{kid: k.Kid, alg: k.Alg, key: key})
	}
	return keys, nil
}

func rsaJWK(k jwk) (*rsa.PublicKey, error) {
	n, errN := base64.RawURLEncoding.DecodeString(k.N)
	e, errE := base64.RawURLEncoding.DecodeString(k.E)
	if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return nil, errors.New(`its "n" or "e" is not base64url`)
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if key.N.BitLen() < minRSABits || key.E < 3 {
		return nil, fmt.Errorf("an RSA key of %d bits is too weak", key.N.BitLen())
	}
	return key, nil
}

func ecJWK(k jwk) (*ecdsa.PublicKey, error) {
	curve := curveNamed(k.Crv)
	if curve == nil {
		return nil, fmt.Errorf("curve %q is not one of %s", k.Crv, strings.Join(curveNames(), ", "))
	}
	x, errX := base64.RawURLEncoding.DecodeString(k.X)
	y, errY := base64.RawURLEncoding.DecodeString(k.Y)
	if errX != nil || errY != nil {
		return nil, errors.New(`its "x" or "y" is not base64url`)
	}
	key := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	//lint:ignore SA1019 the check crypto/ecdh would do, for a key given as x and y
	if !curve.IsOnCurve(key.X, key.Y) {
		return nil, errors.New("its point is not on the curve")
	}
	return key, nil
}

// okpJWK reads an Ed25519 key (RFC 8037 §2); X25519 and Ed448 sign nothing here.
func okpJWK(k jwk) (ed25519.PublicKey, error) {
	if k.Crv != "Ed25519" {
		return nil, fmt.Errorf("OKP curve %q is not Ed25519", k.Crv)
	}
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New(`its "x" is not a base64url Ed25519 key`)
	}
	if smallOrder(x) {
		return nil, errors.New("its point has a small order: signatures by it prove nothing")
	}
	return ed25519.PublicKey(x), nil
}

// smallOrderPoints are the encodings of the Ed25519 points of order 1, 2, 4 and 8, and
// the non-canonical ones of 0 and 1 (libsodium's blocklist): crypto/ed25519 accepts, for
// such a key, signatures no private key made (R the identity and S zero verify any message).
var smallOrderPoints = [][32]byte{
	{0x00},
	{0x01},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

// smallOrder reports whether x encodes a point of smallOrderPoints, whatever its sign bit.
func smallOrder(x []byte) bool {
	for i := 0; i < len(smallOrderPoints); i++ {
		point := smallOrderPoints[i]
		if string(x[:31]) == string(point[:31]) && x[31]&0x7f == point[31]&0x7f {
			return true
		}
	}
	return false
}

func pemPublicKeys(data []byte) ([]publicKey, error) {
	var keys []publicKey
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		var key interface{}
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("holds a %q block: give public keys or certificates", block.Type)
		}
		if err != nil {
			return nil, err
		}
		// Not a type switch: yaegi v0.16.1 returns from the function at an empty case.
		rsaKey, isRSA := key.(*rsa.PublicKey)
		_, isEC := key.(*ecdsa.PublicKey)
		if _, isEd := key.(ed25519.PublicKey); !isRSA && !isEC && !isEd {
			continue // an X25519 or other key: no algorithm here uses it
		}
		if isRSA && rsaKey.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("an RSA key of %d bits is too weak", rsaKey.N.BitLen())
		}
		keys = append(keys, publicKey{key: key})
	}
	return keys, nil
}

// verifyJWS checks a compact JWS against keys and returns its header and payload. A key
// is tried when the kids agree (or either has none) and it suits the header's alg.
func verifyJWS(jws string, keys []publicKey) (map[string]interface{}, []byte, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("the signed answer is not a compact JWS")
	}
	var decoded [3][]byte
	for i := 0; i < 3; i++ {
		raw, ok := canonicalBase64(parts[i])
		if !ok {
			return nil, nil, errors.New("the signed answer is not canonical base64url")
		}
		decoded[i] = raw
	}
	rawHeader, payload, sig := decoded[0], decoded[1], decoded[2]
	var header map[string]interface{}
	if err := json.Unmarshal(rawHeader, &header); err != nil || header == nil {
		return nil, nil, errors.New("the signed answer's header is not a JSON object")
	}
	alg, _ := header["alg"].(string)
	a := jwsAlgNamed(alg)
	if a == nil || a.family == familyHS {
		return nil, nil, fmt.Errorf("the signed answer's alg %q is not allowed", alg)
	}
	if _, ok := header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions we do not understand make the JWS invalid.
		return nil, nil, errors.New("the signed answer has crit extensions")
	}
	kid, _ := header["kid"].(string)
	input := []byte(parts[0] + "." + parts[1])
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		if (kid != "" && k.kid != "" && k.kid != kid) || (k.alg != "" && k.alg != alg) {
			continue
		}
		if verifySignature(a, k.key, input, sig) {
			return header, payload, nil
		}
	}
	return nil, nil, fmt.Errorf("the signed answer's signature (alg %s, kid %q) %w", alg, kid, errNoKey)
}

// canonicalBase64 decodes base64url without padding, line breaks or whitespace (RFC 7515
// §2). The decoder skips CR and LF and ignores the unused trailing bits, so an altered
// signature would still verify and the altered text be forwarded: only a part that
// re-encodes to itself is read.
func canonicalBase64(s string) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	return raw, err == nil && base64.RawURLEncoding.EncodeToString(raw) == s
}

// errNoKey is verifyJWS's error for a signature no key verifies; the caller says whose keys.
var errNoKey = errors.New("matches no key")

// verifySignature checks sig over the JWS signing input by a with key, whose type must be
// the one a names.
func verifySignature(a *jwsAlg, key interface{}, input, sig []byte) bool {
	if a.family == familyEd {
		k, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, input, sig)
	}
	h := a.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch a.family {
		case familyRS:
			return rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil
		case familyPS:
			return rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
	case *ecdsa.PublicKey:
		// ES256 is P-256 with SHA-256, and so on (RFC 7518 §3.4); R and S are fixed-size.
		size := ecSize(k.Curve)
		if a.family != familyES || k.Curve != a.curve || len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}
