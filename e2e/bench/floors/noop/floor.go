// Package noop is the benchmark's "no-op Yaegi plugin" row, the floor of any Yaegi plugin:
// New and a ServeHTTP that calls the next handler.
package noop

import (
	"context"
	"net/http"
)

// Config is empty: the no-op plugin has nothing to configure.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

type noop struct{ next http.Handler }

// New builds the no-op middleware.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &noop{next: next}, nil
}

func (n *noop) ServeHTTP(rw http.ResponseWriter, req *http.Request) { n.next.ServeHTTP(rw, req) }
