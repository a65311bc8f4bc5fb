package introspection

import (
	"fmt"
	"net/http"
	"testing"
)

// TestForwardHeaders: how claims are rendered as upstream headers. Spoofed copies are in
// TestHostileWorld.
func TestForwardHeaders(t *testing.T) {
	as := newAuthServer(t)
	claims := activeClaims()
	claims["uid"] = 9007199254740993 // beyond float64's exact integers
	claims["roles"] = []interface{}{"admin", "dev"}
	// Lists a comma-separated value could not tell from others: not forwarded.
	claims["groups"] = []interface{}{"u", "x,admin"}
	claims["teams"] = []interface{}{" a"}
	claims["nested"] = []interface{}{"u", []interface{}{"x,admin"}}
	claims["quoted"] = []interface{}{`"a`, `b"`}
	claims["org"] = map[string]interface{}{"name": "acme", "id": 7}
	claims["verified"] = true
	as.answer("tok", claims)
	config := testConfig(as.URL)
	config.ForwardHeaders = map[string]string{
		"X-Auth-Subject": "sub",
		"X-Auth-Uid":     "uid",
		"X-Auth-Roles":   "roles",
		"X-Auth-Org":     "org",
		"X-Auth-Missing": "nothing",
		"x-auth-client":  "client_id",
		"X-Verified":     "verified",
		"X-Auth-Groups":  "groups",
		"X-Auth-Teams":   "teams",
		"X-Auth-Nested":  "nested",
		"X-Auth-Quoted":  "quoted",
	}
	m, next := newMiddleware(t, config)

	rec := serve(m, func(r *http.Request) {
		bearer("tok")(r)
		r.Header["X-Unrelated"] = []string{"kept"}
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	got := next.lastRequest().Header
	want := http.Header{
		"Authorization":  {"Bearer tok"},
		"X-Auth-Subject": {"alice"},
		"X-Auth-Uid":     {"9007199254740993"},
		"X-Auth-Roles":   {"admin,dev"},
		"X-Auth-Org":     {`{"id":7,"name":"acme"}`},
		"X-Auth-Client":  {"app"},
		"X-Verified":     {"true"},
		"X-Unrelated":    {"kept"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backend headers:\n got %v\nwant %v", got, want)
	}
}
