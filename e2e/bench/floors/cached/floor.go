// Package floorcached is the benchmark's "floor, cached" row: the least a cached token
// check can do under yaegi. It reads Authorization, checks the Bearer prefix in any case,
// hashes the token, looks the hash up (storing a verdict on first sight), compares the
// verdict's deadline with the clock and calls the next handler. It checks nothing else and
// is not a middleware to use: it is the figure the plugin's cached path is measured against.
package floorcached

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
}

type floor struct {
	next     http.Handler
	verdicts sync.Map // SHA-256 of the token → *verdict
}

// New builds the floor.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &floor{next: next}, nil
}

func (f *floor) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
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
		v = &verdict{deadline: now + int64(time.Hour)}
		f.verdicts.Store(key, v)
	}
	if now >= v.(*verdict).deadline {
		http.Error(rw, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	f.next.ServeHTTP(rw, req)
}
