package introspection

import (
	"context"
	"log"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRejectionLogBound: at most ten lines a second per middleware name, shared by the
// instances of that name (one per router), then one line that counts the rest.
func TestRejectionLogBound(t *testing.T) {
	as := newAuthServer(t)
	var logs lockedBuffer
	log.SetOutput(&logs)
	defer log.SetOutput(os.Stderr)
	forgetRejectionLogs()
	clk := &clock{t: time.Now()}
	instance := func(name string) *middleware {
		config := testConfig(as.URL)
		config.LogRejections = true
		handler, err := New(context.Background(), &backend{}, config, name)
		if err != nil {
			t.Fatal(err)
		}
		m := handler.(*middleware)
		m.now = clk.now
		return m
	}
	routerA, routerB, other := instance("auth@file"), instance("auth@file"), instance("other@file")
	token := leak + "-refused" // unknown to the endpoint: inactive
	for i := 0; i < 15; i++ {
		serve(routerA, bearer(token))
		serve(routerB, bearer(token))
	}
	serve(other, bearer(token))
	refused := func() int { return strings.Count(logs.String(), "auth@file: refused 401: token inactive\n") }
	if n := refused(); n != 10 {
		t.Errorf("30 refusals in one second logged %d lines, want 10", n)
	}
	if n := strings.Count(logs.String(), "other@file: refused 401: token inactive\n"); n != 1 {
		t.Errorf("another middleware's refusal logged %d lines, want its own 1", n)
	}
	waitFor(t, "the line that counts the refusals not logged", func() bool {
		return strings.Contains(logs.String(), "auth@file: 20 refusals not logged since the last line (over 10 a second)\n")
	})
	clk.advance(time.Second)
	serve(routerA, bearer(token))
	if n := refused(); n != 11 {
		t.Errorf("a refusal in the next second: %d lines in all, want 11", n)
	}
	if strings.Contains(logs.String(), leak) {
		t.Errorf("the log holds the token:\n%s", logs.String())
	}
	if n := as.callCount(); n != 1 {
		t.Errorf("the endpoint got %d calls, want 1: logging is no reason to ask again", n)
	}
}
