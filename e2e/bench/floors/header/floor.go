// Package floorheader is the benchmark's "floor, cached + 1 header" row: the "floor,
// cached" check (floors/cached), plus deleting the precomputed spoofable spellings of one
// identity header and setting it from the stored verdict. It is a figure to measure
// against, not a middleware to use.
package floorheader

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config is empty: the floor has nothing to configure.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

type verdict struct {
	deadline int64 // Unix ns
	subject  string
}

type floor struct {
	next     http.Handler
	verdicts sync.Map // SHA-256 of the token → *verdict
	spoofed  []string // the spellings of X-Auth-Subject a client can send, as Go's server writes them
}

// New builds the floor.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	f := &floor{next: next}
	for _, a := range []string{"-", "_", "."} {
		for _, b := range []string{"-", "_", "."} {
			f.spoofed = append(f.spoofed, http.CanonicalHeaderKey("x"+a+"auth"+b+"subject"))
		}
	}
	return f, nil
}

func (f *floor) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	for i := 0; i < len(f.spoofed); i++ {
		delete(req.Header, f.spoofed[i])
	}
	auth := req.Header.Get("Authorization")
	if len(auth) < len("Bearer x") || !strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	sum := sha256.Sum256([]byte(auth[len("Bearer "):]))
	key := string(sum[:])
	now := time.Now().UnixNano()
	v, ok := f.verdicts.Load(key)
	if !ok {
		v = &verdict{deadline: now + int64(time.Hour), subject: "bench-user"}
		f.verdicts.Store(key, v)
	}
	found := v.(*verdict)
	if now >= found.deadline {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	req.Header["X-Auth-Subject"] = []string{found.subject}
	f.next.ServeHTTP(rw, req)
}
