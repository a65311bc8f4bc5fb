//go:build !race

package loader

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Not under -race: yaegi v0.16.1 sets a type's reflect type lazily, without a lock, each time
// it wraps a function value for compiled code (interp/type.go refType), and the race detector
// fails any test that runs interpreted code concurrently. Traefik is not built with -race;
// `make e2e` runs this file in a second, plain `go test`.

// TestInterpretedHerd: rounds of 100 new tokens, each in 50 concurrent requests with their
// own request contexts, make exactly one call per token, and every request gets through.
// The endpoint holds its answers, so most requests wait on a call in flight. This caught
// yaegi v0.16.1 sharing one select statement's cases between goroutines: a few waiters in
// a round read a result that was not there yet (503, or a nil result and a panic).
func TestInterpretedHerd(t *testing.T) {
	const rounds, tokens, copies = 20, 100, 50
	p := Load(context.Background(), t, os.Environ())
	var calls atomic.Int64
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"scope":"read","exp":%d}`, time.Now().Add(time.Hour).Unix())
	}))
	defer auth.Close()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	handler, err := p.New(DecodePluginLabels(t, Keys(auth.URL, nil)), next)
	if err != nil {
		t.Fatal(err)
	}

	var refused, panicked atomic.Int64
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for token := 0; token < tokens; token++ {
			for n := 0; n < copies; n++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						if recover() != nil {
							panicked.Add(1)
						}
					}()
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil).WithContext(ctx)
					req.Header.Set("Authorization", fmt.Sprintf("Bearer herd-%d-%d", round, token))
					rec := httptest.NewRecorder()
					<-start
					handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						refused.Add(1)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
	}
	if calls.Load() != rounds*tokens || refused.Load() != 0 || panicked.Load() != 0 {
		t.Errorf("endpoint calls = %d, want %d; requests refused = %d, panicked = %d, want 0",
			calls.Load(), rounds*tokens, refused.Load(), panicked.Load())
	}
}
