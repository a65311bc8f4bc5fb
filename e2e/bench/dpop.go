package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/traefik-oauth2-introspection/e2e/harness"
)

// dpopProofMaxAge is the DPoP row's dpopProofMaxAge: longer than the making of a run's
// proofs and the run together, which measureRows checks.
const dpopProofMaxAge = 10 * time.Minute

// proofMargin is how many more proofs than the estimate a DPoP row's run gets: the estimate
// is one round's throughput, and the next may be faster.
const proofMargin = 1.5

// dpopKey is the benchmark's DPoP client (RFC 9449): an ES256 key whose proofs, signed by
// go-jose rather than by the plugin's JOSE code, carry its public key in their jwk header;
// the endpoint binds every token of the DPoP row to its thumbprint (cnf.jkt).
type dpopKey struct {
	*harness.DPoPKey
	jkt string
}

func newDPoPKey() (*dpopKey, error) {
	key, err := harness.NewDPoPKey(jose.ES256)
	if err != nil {
		return nil, err
	}
	return &dpopKey{DPoPKey: key, jkt: key.Thumbprint()}, nil
}

// proof is a new proof, with its own jti, for a GET of htu with token, issued now. Its iat
// has microseconds (a NumericDate may have a fraction, RFC 7519 §2): the proofs of a batch
// have their iats in the order they are sent, so the plugin's replay memory, once full,
// never raises its floor (the iat of the proof it forgets) past a proof not sent yet.
func (k *dpopKey) proof(htu, token string) (string, error) {
	claims := harness.ProofClaims(http.MethodGet, htu, token)
	claims["iat"] = float64(time.Now().UnixMicro()) / 1e6
	return k.Sign(claims)
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
