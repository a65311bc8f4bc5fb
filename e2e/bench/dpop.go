package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// dpopProofMaxAge is the DPoP row's dpopProofMaxAge: longer than the making of a run's
// proofs and the run together, which measureRows checks.
const dpopProofMaxAge = 10 * time.Minute

// proofMargin is how many more proofs than the estimate a DPoP row's run gets: the estimate
// is one round's throughput, and the next may be faster.
const proofMargin = 1.5

// dpopKey is the benchmark's DPoP client (RFC 9449): an ES256 key whose proofs carry its
// public key in their jwk header, and the RFC 7638 thumbprint the endpoint binds every
// token of the DPoP row to (cnf.jkt). The proofs are signed with go-jose, not with the
// plugin's JOSE code.
type dpopKey struct {
	signer jose.Signer
	jkt    string
}

func newDPoPKey() (*dpopKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	thumbprint, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, err
	}
	return &dpopKey{signer: signer, jkt: base64.RawURLEncoding.EncodeToString(thumbprint)}, nil
}

// proofClaims are a proof's claims (RFC 9449 §4.2).
type proofClaims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	// A NumericDate may have a fraction (RFC 7519 §2): in microseconds, the proofs of a
	// batch have their iats in the order they are sent, so the plugin's replay memory, once
	// full, never raises its floor (the iat of the proof it forgets) past a proof not sent yet.
	IAT float64 `json:"iat"`
	ATH string  `json:"ath"`
}

// proof is a new proof, with its own jti, for a GET of htu with token, issued now.
func (k *dpopKey) proof(htu, token string) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	ath := sha256.Sum256([]byte(token))
	payload, err := json.Marshal(proofClaims{
		JTI: base64.RawURLEncoding.EncodeToString(jti),
		HTM: http.MethodGet,
		HTU: htu,
		IAT: float64(time.Now().UnixMicro()) / 1e6,
		ATH: base64.RawURLEncoding.EncodeToString(ath[:]),
	})
	if err != nil {
		return "", err
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// writeProofs writes n new proofs for a GET of htu with token where dpop.lua's threads read
// them: thread t's in prefix-t, one a line, proof i in thread i mod threads's file. Each
// thread sends its own file's, each once, so no proof is sent twice.
func (k *dpopKey) writeProofs(prefix string, threads, n int, htu, token string) error {
	files := make([]*os.File, threads)
	writers := make([]*bufio.Writer, threads)
	for t := range files {
		f, err := os.Create(fmt.Sprintf("%s-%d", prefix, t))
		if err != nil {
			return err
		}
		defer f.Close()
		files[t], writers[t] = f, bufio.NewWriter(f)
	}
	for i := 0; i < n; i++ {
		proof, err := k.proof(htu, token)
		if err != nil {
			return err
		}
		w := writers[i%threads]
		w.WriteString(proof)
		w.WriteByte('\n')
	}
	for t, w := range writers {
		if err := w.Flush(); err != nil {
			return err
		}
		if err := files[t].Close(); err != nil {
			return err
		}
	}
	return nil
}
